package diffraction

import "math"

type vec3 [3]float64

func (a vec3) dot(b vec3) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func (a vec3) cross(b vec3) vec3 {
	return vec3{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}
func (a vec3) scale(f float64) vec3 { return vec3{a[0] * f, a[1] * f, a[2] * f} }
func (a vec3) norm() float64        { return math.Sqrt(a.dot(a)) }

// mat3 is a rotation matrix, row-major: (m v)_i = m[i] . v.
type mat3 [3]vec3

func (m mat3) mul(n mat3) mat3 {
	var out mat3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			out[i][j] = m[i][0]*n[0][j] + m[i][1]*n[1][j] + m[i][2]*n[2][j]
		}
	}
	return out
}

// quatToMat turns a unit quaternion (w, x, y, z) into a rotation matrix.
func quatToMat(w, x, y, z float64) mat3 {
	return mat3{
		{1 - 2*(y*y+z*z), 2 * (x*y - w*z), 2 * (x*z + w*y)},
		{2 * (x*y + w*z), 1 - 2*(x*x+z*z), 2 * (y*z - w*x)},
		{2 * (x*z - w*y), 2 * (y*z + w*x), 1 - 2*(x*x+y*y)},
	}
}

// randomRotation is uniform over SO(3) (Shoemake's subgroup algorithm): a
// serial-crystallography crystal arrives in any orientation.
func randomRotation(r *rng) mat3 {
	u1, u2, u3 := r.float(), r.float(), r.float()
	a, b := math.Sqrt(1-u1), math.Sqrt(u1)
	return quatToMat(b*math.Cos(2*math.Pi*u3), a*math.Sin(2*math.Pi*u2), a*math.Cos(2*math.Pi*u2), b*math.Sin(2*math.Pi*u3))
}

// smallRotation turns by an angle uniform in [0, maxRad] about a random axis:
// the wobble between neighbouring raster cells of one crystal.
func smallRotation(r *rng, maxRad float64) mat3 {
	// Random unit axis from a normalised Gaussian-free construction.
	z := 2*r.float() - 1
	phi := 2 * math.Pi * r.float()
	s := math.Sqrt(1 - z*z)
	ax, ay, az := s*math.Cos(phi), s*math.Sin(phi), z
	half := 0.5 * maxRad * r.float()
	sh := math.Sin(half)
	return quatToMat(math.Cos(half), ax*sh, ay*sh, az*sh)
}

// Cell is a unit cell: axis lengths in Å, angles in degrees.
type Cell struct {
	A, B, C            float64
	Alpha, Beta, Gamma float64
}

// basis returns the real-space axis vectors (a along x, b in the xy plane)
// and the reciprocal axes a*, b*, c* (Å⁻¹), so that s = h a* + k b* + l c*
// and h = s . a.
func (c Cell) basis() (real, recip [3]vec3, volume float64) {
	d2r := math.Pi / 180
	ca, cb, cg := math.Cos(c.Alpha*d2r), math.Cos(c.Beta*d2r), math.Cos(c.Gamma*d2r)
	sg := math.Sin(c.Gamma * d2r)
	a := vec3{c.A, 0, 0}
	b := vec3{c.B * cg, c.B * sg, 0}
	cy := (ca - cb*cg) / sg
	cz := math.Sqrt(math.Max(0, 1-cb*cb-cy*cy))
	cv := vec3{c.C * cb, c.C * cy, c.C * cz}
	v := a.dot(b.cross(cv))
	return [3]vec3{a, b, cv}, [3]vec3{b.cross(cv).scale(1 / v), cv.cross(a).scale(1 / v), a.cross(b).scale(1 / v)}, v
}

// Volume in Å³.
func (c Cell) Volume() float64 { _, _, v := c.basis(); return v }

// randomCell draws axes uniformly in [minAxis, maxAxis] Å and angles within
// ±maxDev degrees of 90: "near-orthogonal" cells like most protein crystals.
func randomCell(r *rng, minAxis, maxAxis, maxDev float64) Cell {
	ax := func() float64 { return minAxis + (maxAxis-minAxis)*r.float() }
	an := func() float64 { return 90 + maxDev*(2*r.float()-1) }
	return Cell{A: ax(), B: ax(), C: ax(), Alpha: an(), Beta: an(), Gamma: an()}
}
