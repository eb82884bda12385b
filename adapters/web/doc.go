// Package web is Tioga's third face on the property registry: a live web
// page for the people at the beamline, served over HTTP beside TINE and
// OPC UA.
//
// The page reads the same device tree the other adapters map, and nothing
// else: no new source of truth. What it shows (the series now, the hits
// plot, the raster heat map, the best frame, every device's properties) it
// takes from properties, and it learns of changes through the registry's
// subscriptions. The server holds one set of subscriptions for all open
// pages (none while no page is open), drains them every 300 ms and sends
// one batch of changes to every page over Server-Sent Events, the way TINE
// event subscribers get dozor-pass batches. The browser never polls.
//
// Two views need pixels the registry does not hold: the frame view (an
// image file on disk, with its spots and resolution rings) and the heat-map
// figure (the file the pipeline writes beside the images). They come
// through two small interfaces, FrameRenderer and HeatMapRenderer, which
// the command wires to the drivers that read CBF files and draw figures;
// this package never imports a driver.
//
// Everything the page needs is embedded in the binary (package embed): it
// works on a beamline network with no internet access. The plots are
// hand-written canvas code (static/app.js, a few hundred lines) rather than
// a charting library: the page needs three specific figures (a scatter of
// score and spots per frame over up to a million frames, decimated per
// pixel column; a heat map with the pipeline's colour scale, hover and
// click; a colour bar), which are smaller to write than to adapt, and
// nothing has to be vendored or kept up to date.
//
// Writes are not offered unless Config.AllowWrites is set, and then only to
// clients that the same rules as TINE writes allow (user list, network
// list); a write is a POST with a JSON body from the page's own origin.
package web
