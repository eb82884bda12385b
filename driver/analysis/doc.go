// Package analysis is the per-frame analysis of spot-finding.md: Bragg spots,
// a score, the resolution limit, the integrated signal and a hit flag for
// every frame of the stream, fast enough to keep up with the detector on one
// core per worker.
//
// # Use
//
// Per series, build the tables once (geometry, masks, parameters) and share
// them read-only; per worker, one Analyser; per frame, one call:
//
//	t, err := analysis.NewTables(geom, analysis.DefaultParams(), analysis.Masks{Pixel: mask})
//	a := analysis.NewAnalyser(t) // one per worker goroutine
//	var res analysis.Result      // reused: its spot list keeps its storage
//	err = a.Analyse(pixels, elemSize, &res)
//
// Every parameter is described by ParamTable (name, units, limits, default)
// and read and written by name with Params.Get and Params.Set, so the
// property layer publishes them without knowing the fields. A parameter
// change during a series is Tables.WithParams plus Analyser.SetTables.
//
// # Method
//
// Tables (NewTables): every pixel gets the index of its resolution shell;
// shells are equally spaced in 1/d² between the lowest and highest
// resolution of the analysed pixels (Params.Shells of them, 128 by default).
// Equal steps in 1/d² are equal solid angles, so complete rings hold about
// equal numbers of pixels (outer ones more, by about 1/cos³ 2θ on a flat
// detector) and every shell's background rests on many thousand pixels. Module gaps (from the
// EIGER profile of the frame size), the detector's pixel mask, a user mask,
// the beamstop rectangle and the resolution range d-max..d-min are folded
// into the same byte as an "excluded" shell, so the per-frame passes test one
// byte per pixel for all masks.
//
// Background (first pass): an exact histogram of counts 0..255 per shell
// over the shell's background sample (every 4th or 2nd pixel of a large
// shell, every pixel of a small one, of an ice band and of the shells an
// ice band is compared with), then median, MAD and sigma clipping to
// convergence on the histogram (background.go explains the choices and the
// overflow path for bright backgrounds). All-ones pixels are excluded frame
// by frame, and counted by the strong-pixel pass.
//
// Strong pixels (second pass), method "threshold": v > μ + spot-level·σ and
// v > μ + 1 with μ, σ the background of the pixel's shell; method
// "dispersion": DIALS' dispersion test in a (2·kernel-size+1)² box
// (dispersion.go). A frame with more strong pixels than max-strong-fraction
// (0.25) of its analysed pixels is flagged Result.Overloaded and gets no
// spots: it is flooded, shadowed or broken, not a diffraction pattern, and
// the cap also bounds the scratch whatever arrives.
//
// Grow (threshold method, grow-level 2.5 by default; 0 turns it off): the
// strong pixels are seeds; every pixel 8-connected to a seed, directly or
// through other grown pixels, that exceeds its shell's background by
// grow-level σ (and by one photon) joins them. It is hysteresis: a spot
// needs one pixel at spot-level σ, and then keeps its weaker flanks, which
// hold about half the photons of a weak spot; pixels at grow-level alone
// form no spot. On weak simulated crystals it doubles the recall of spots
// with I/σ 5-7 (0.48 to 0.88) with no false spot on blanks; on the real
// frames it brings the spot counts toward DIALS' (README). The line test
// below looks at the seeds only.
//
// Hot pixels (hot.go): with a HotMap in Masks.Hot (the pipeline keeps one
// across series), a pixel strong on hot-pixel-frames frames and on half of
// all frames seen is hot, and hot pixels are dropped from the strong pixels.
//
// Spots: 8-connected (threshold) or 4-connected (dispersion, as DIALS) groups of strong pixels (a union-find over the sparse
// strong-pixel list; no label image). Per spot, with b and σ_b² the shell
// background and variance of each pixel:
//
//	I       = Σ (v - b)                     integrated intensity above background
//	σ(I)    = sqrt(max(I, 0) + Σ σ_b²)      Poisson noise of the signal plus the
//	                                        measured noise of the background under it
//	(x, y)  = Σ (v - b)·(x, y) / Σ (v - b)  intensity-weighted centroid
//	peak    = max v, d = resolution of the centroid
//
// and the spot is kept when spot-size <= npix <= max-spot-size, it is
// significant, and its shape is a Bragg spot's. Significant: I/σ(I) >=
// min-snr, or, on a background of at most poisson-background photons per
// pixel, a photon count whose Poisson tail under the background alone is
// below min-snr's Gaussian tail divided by the analysed pixels (σ(I)
// counts the signal's own shot noise, so 16 photons in 6 pixels on 0.003
// counts/px have I/σ 4 while chance would not put them there in 10^30
// frames). Shape (Result.ShapeRejected): seeds not a line one pixel wide of 5
// pixels or more (a hot column, a streak), the peak pixel within
// max-separation of the centroid (DIALS' peak-centroid filter: streaks,
// lopsided blobs), and, from 50 pixels on, an intensity-weighted RMS radius
// of at most twice max-separation (a wide diffuse blob). A diffuse blob rejected by shape
// or by max-spot-size breaks, at the strong-pixel threshold, into pieces
// around its connected core; the spots lying within its extent, widened by
// a quarter of its size, are dropped as its fragments
// (Result.BlobFragments). Gain (counts per photon) scales the signal's
// shot noise in σ(I) and the photon counts of the Poisson test.
//
// Ice rings (ice.go): the tables give every hexagonal-ice ring a narrow
// band of its own (ice-ring-width in 1/d², the rings of DIALS' ice
// filter); per frame a band whose background stands out of the shells
// around it (a continuous ring) or that holds far more spots than the spot
// density around it predicts, spread around the ring (a spotty ring), is an
// ice ring. Mode ice-rings: auto (default) drops the detected rings' spots
// from the list, the score and the resolution; exclude drops every band's
// spots; off does neither. Result.Ice, IceRings and IceSpots report it.
//
// # Frame verdict
//
// With N accepted spots (Result.Spots) and spot i's I/σ and d (Å):
//
//	IS         = Σ I_i  (integrated signal, "dozor-pass-IS")
//	score      = 0                                   if N < min-spots
//	           = 10 · Σ_i ln(1 + I_i/σ_i) / d_i²      otherwise
//	resolution = 0                                   if N < min-spots
//	           = 1 / sqrt(Q),  Q = q_(j) · (N+1) / j
//	             with q_(j) the j-th smallest of the spots' 1/d², j = round(p·N)
//	             clamped to 1..N-1, p = resolution-quantile (0.95); Q is capped at
//	             the highest resolution of the analysed pixels
//	hit        = score > 0 and score >= hit-threshold
//
// Why this score: ln(1 + I/σ) counts a spot by its strength with diminishing
// returns, so a handful of saturated spots cannot outweigh many real ones;
// 1/d² weights a spot by how far out in reciprocal space it is, so a frame
// diffracting to 2 Å outscores one with as many spots to 6 Å; the sum grows
// with the number of spots. The factor 10 puts typical hits in 1..1000:
// 100 spots of I/σ ≈ 20 around 3.5 Å give 10·100·3·0.08 ≈ 250; ten weak
// spots at 5 Å give about 10·10·1.8·0.04 ≈ 7. The score is for comparing
// frames of one scan (raster centring, best frame), not with DOZOR's numbers.
//
// Why this resolution estimate: on a still frame the recorded spots are
// spread about evenly in 1/d² up to the diffraction limit Q, and for N
// values spread evenly over [0, Q] the j-th smallest has expectation
// Q·j/(N+1). Scaling an upper order statistic by (N+1)/j therefore
// estimates the limit itself rather than a point inside it (a plain 95th
// percentile sits about 3 % low in d), while j <= N-1 and p < 1 keep a
// single spurious spot at high angle from setting it. On the simulated
// series the median error against the true cut-off is about 1 %.
//
// # Cost
//
// Two streaming passes over the frame (pixels plus one shell byte per
// pixel), O(shells·256) work for the background, and work proportional to
// the strong pixels for the spots. Nothing is allocated per frame once an
// Analyser's scratch has grown to the largest frame content seen; parallelism
// is across frames, one Analyser per worker.
package analysis
