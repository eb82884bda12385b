// Package cdeflate wraps, through cgo, the two C deflate libraries Debian
// offers, Intel ISA-L's igzip (libisal-dev) and libdeflate
// (libdeflate-dev), for one purpose: the measurement behind the cbf
// package's choice of deflate path (driver/cbf's TestCompareDeflate, run by
// make compare-deflate, which installs both). It builds only with the
// comparedeflate tag; without it the package is empty and nothing in Tioga
// links a C deflate library.
package cdeflate
