package contract

import (
	"tioga/device"
	"tioga/properties"
)

// DownstreamDevice is the device, on the streaming server beside tioga and
// scan, that reports the processing of hits by DIALS or CrystFEL jobs
// (driver/downstream): /P14/rideau/downstream.
const DownstreamDevice = "downstream"

// Downstream is the downstream-processing device: hits handed in chunks
// to jobs on a SLURM cluster (or this host), and what came back: the
// indexing rate and the unit cell of the series.
type Downstream struct {
	Device *device.Device

	Executor     *properties.Property // slurm, local or disabled
	Status       *properties.Property // idle, processing, done, or error: <reason>
	SeriesID     *properties.Property // series the properties below describe
	Hits         *properties.Property // hits of the series handed to the hand-off
	HitsInJobs   *properties.Property // hits in submitted chunks
	HitsFinished *properties.Property // hits in chunks whose job finished (done)
	Indexed      *properties.Property // indexed-frames
	IndexingRate *properties.Property // % of the finished hits that indexed
	UnitCell     *properties.Property // median [a, b, c, alpha, beta, gamma]
	CellSpread   *properties.Property // robust spread of the same
	JobsQueued   *properties.Property
	JobsRunning  *properties.Property
	JobsDone     *properties.Property
	JobsFailed   *properties.Property // failed after the retry
	JobsRetried  *properties.Property
	ChunksLost   *properties.Property // chunks dropped because the queue was full
	HitsLost     *properties.Property // hits in those chunks
	LastFailure  *properties.Property // reason and log path of the last failed attempt
	Latency      *properties.Property // [last, mean, max] s from a hit on disk to its result
	IndexedFile  *properties.Property // <prefix>_<run>_indexed.jsonl
	WorkDir      *properties.Property // where the jobs' files are
	ChunkHits    *properties.Property // writable: hits per job
	ChunkPeriod  *properties.Property // writable: longest wait before a partial chunk is submitted
	Cancel       *properties.Property // command: cancel a series' jobs
}

// NewDownstream declares the downstream device.
func NewDownstream() *Downstream {
	d := device.New(DownstreamDevice, "downstream processing: hits in chunks to DIALS or CrystFEL jobs (SLURM or local), indexing rate and unit cell back")
	x := &Downstream{Device: d}
	r := properties.Read
	x.Executor = d.Add(text("executor", r, 16, "where jobs run: slurm, local, or disabled"))
	x.Executor.SetText("disabled")
	x.Status = d.Add(text("status", r, 1024, "idle, processing (jobs queued or running), done, or error: <reason> (failed jobs, lost chunks)"))
	x.Status.SetText(StatusIdle)
	x.SeriesID = d.Add(ro("series-id", properties.Int32, "", "series the figures describe (the latest that had hits)"))
	x.Hits = d.Add(ro("hits", properties.Int32, "frames", "hits of the series on disk, handed to the hand-off"))
	x.HitsInJobs = d.Add(ro("hits-submitted", properties.Int32, "frames", "hits in chunks submitted as jobs"))
	x.HitsFinished = d.Add(ro("hits-processed", properties.Int32, "frames", "hits in chunks whose job finished successfully"))
	x.Indexed = d.Add(ro("indexed-frames", properties.Int32, "frames", "hits that indexed"))
	x.IndexingRate = d.Add(ro("indexing-rate", properties.Float32, "%", "indexed frames per processed hit (hits of jobs that finished)"))
	x.UnitCell = d.Add(array("unit-cell", properties.Float64, 6, r, "Å, deg", "median unit cell of the indexed frames [a, b, c, alpha, beta, gamma] (zeros: none yet)"))
	x.CellSpread = d.Add(array("unit-cell-spread", properties.Float64, 6, r, "Å, deg", "spread of the unit cells [a, b, c, alpha, beta, gamma]: 1.4826 x median absolute deviation"))
	x.JobsQueued = d.Add(ro("jobs-queued", properties.Int32, "jobs", "jobs of the series waiting (in the chunk queue or the executor's)"))
	x.JobsRunning = d.Add(ro("jobs-running", properties.Int32, "jobs", "jobs of the series running"))
	x.JobsDone = d.Add(ro("jobs-done", properties.Int32, "jobs", "jobs of the series finished successfully"))
	x.JobsFailed = d.Add(ro("jobs-failed", properties.Int32, "jobs", "jobs of the series that failed, timed out or were cancelled, after their retry"))
	x.JobsRetried = d.Add(ro("jobs-retried", properties.Int32, "jobs", "failed job attempts that were retried"))
	x.ChunksLost = d.Add(ro("count-chunks-dropped", properties.Int32, "chunks", "chunks of the series dropped because the chunk queue was full (executor too slow or down)"))
	x.HitsLost = d.Add(ro("count-hits-dropped", properties.Int32, "frames", "hits in the dropped chunks"))
	x.LastFailure = d.Add(text("last-failure", r, 2048, "the last failed job attempt: reason and log path (empty: none)"))
	x.Latency = d.Add(array("latency", properties.Float64, 3, r, "s", "[last, mean, max] time from a hit on disk to its indexing result"))
	x.IndexedFile = d.Add(text("indexed-file", r, 4096, "per-hit results of the series (JSON lines: frame, file, indexed, cell)"))
	x.WorkDir = d.Add(text("work-dir", r, 4096, "directory of the series' job files (scripts, file lists, logs, outputs)"))
	x.ChunkHits = d.Add(rw("chunk-hits", properties.Int32, "frames", "hits per job: a chunk is submitted when it holds this many", lim(1, 100000)))
	x.ChunkPeriod = d.Add(rw("chunk-period", properties.Float64, "s", "a partial chunk is submitted when its first hit is this old", lim(0.1, 86400)))
	x.Cancel = d.Add(cmd("cancel", properties.Int32, "cancel the jobs of a series (queued chunks are dropped, submitted jobs cancelled)", "series id (0 = the series shown)"))
	return x
}
