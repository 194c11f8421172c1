package winograd

// The transforms' pure-Go twins. The assembly (asm/winograd) performs exactly
// these float32 operations, one vector instruction each, so its results are
// these bits. No product may be fused with an addition: every product is
// wrapped in an explicit float32 conversion, which the Go spec says rounds it
// (and so forbids the fusion the compiler may otherwise do, as it does with
// GOAMD64=v3). The products are by 2, 4 and 8, exact unless they overflow.

// bt is one column (or row) of Bᵀ d B: r = Bᵀ d for the 6 values d0..d5,
//
//	Bᵀ = | 4  0 -5  0  1  0 |
//	     | 0 -4 -4  1  1  0 |
//	     | 0  4 -4 -1  1  0 |
//	     | 0 -2 -1  2  1  0 |
//	     | 0  2 -1 -2  1  0 |
//	     | 0  4  0 -5  0  1 |
//
// with every output two roundings deep (the products are exact).
func bt(d0, d1, d2, d3, d4, d5 float32) (r0, r1, r2, r3, r4, r5 float32) {
	t2 := d4 - d2
	r0 = float32(4*(d0-d2)) + t2 // 4d0 - 5d2 + d4
	t0 := d4 - float32(4*d2)
	t1 := d3 - float32(4*d1)
	r1 = t0 + t1 // -4d1 - 4d2 + d3 + d4
	r2 = t0 - t1 // 4d1 - 4d2 - d3 + d4
	t3 := float32(2 * (d3 - d1))
	r3 = t2 + t3                   // -2d1 - d2 + 2d3 + d4
	r4 = t2 - t3                   // 2d1 - d2 - 2d3 + d4
	r5 = (d5 - d3) - float32(2*t3) // 4d1 - 5d3 + d5
	return
}

// at is one column (or row) of Aᵀ M A: o = Aᵀ m for the 6 values m0..m5,
//
//	Aᵀ = | 1  1  1  1  1  0 |
//	     | 0  1 -1  2 -2  0 |
//	     | 0  1  1  4  4  0 |
//	     | 0  1 -1  8 -8  1 |
//
// with every output at most three roundings deep.
func at(m0, m1, m2, m3, m4, m5 float32) (o0, o1, o2, o3 float32) {
	a, b := m1+m2, m1-m2
	c, e := m3+m4, m3-m4
	o0 = (m0 + a) + c
	o1 = b + float32(2*e)
	o2 = a + float32(4*c)
	o3 = (b + float32(8*e)) + m5
	return
}

// inputTransformGo is the input transform of nt tiles 4 pixels apart along a
// row: for t < nt, c < nc, with d[y][x] = in[t*4*sx+y*sy+x*sx+c],
//
//	for y < 6 { tmp[y][0..5] = bt(d[y][0..5]) }    // d B, row by row
//	for l < 6 { V[0..5][l] = bt(tmp[0..5][l]) }    // Bᵀ (d B), column by column
//	v[(6k+l)*vs+t*vt+c] = V[k][l]
func inputTransformGo(v []float32, vs, vt int, in []float32, sx, sy, nt, nc int) {
	var d, tmp [6][6]float32
	for t := 0; t < nt; t++ {
		for c := 0; c < nc; c++ {
			for y := range d {
				row := in[t*4*sx+y*sy+c:]
				for x := range d[y] {
					d[y][x] = row[x*sx]
				}
			}
			for y := range tmp {
				r := &d[y]
				tmp[y][0], tmp[y][1], tmp[y][2], tmp[y][3], tmp[y][4], tmp[y][5] = bt(r[0], r[1], r[2], r[3], r[4], r[5])
			}
			o := v[t*vt+c:]
			for l := 0; l < 6; l++ {
				r0, r1, r2, r3, r4, r5 := bt(tmp[0][l], tmp[1][l], tmp[2][l], tmp[3][l], tmp[4][l], tmp[5][l])
				o[(0+l)*vs], o[(6+l)*vs], o[(12+l)*vs] = r0, r1, r2
				o[(18+l)*vs], o[(24+l)*vs], o[(30+l)*vs] = r3, r4, r5
			}
		}
	}
}

// outputTransformGo is the output transform of nt tiles 4 pixels apart along
// a row: for t < nt, c < nc, with M[k][l] = m[(6k+l)*ms+t*mt+c],
//
//	for k < 6 { tmp[k][0..3] = at(M[k][0..5]) }    // M A, row by row
//	for j < 4 { Y[0..3][j] = at(tmp[0..5][j]) }    // Aᵀ (M A), column by column
//	y := Y[i][j] + bias[c]
//	if relu && y < 0 { y = 0 }
//	out[t*4*so+i*sy+j*so+c] = y
func outputTransformGo(out []float32, so, sy int, m []float32, ms, mt, nt, nc int, bias []float32, relu bool) {
	var tmp [6][4]float32
	for t := 0; t < nt; t++ {
		for c := 0; c < nc; c++ {
			p := m[t*mt+c:]
			for k := range tmp {
				q := p[6*k*ms:]
				tmp[k][0], tmp[k][1], tmp[k][2], tmp[k][3] = at(q[0], q[ms], q[2*ms], q[3*ms], q[4*ms], q[5*ms])
			}
			o := out[t*4*so+c:]
			for j := 0; j < 4; j++ {
				var y [4]float32
				y[0], y[1], y[2], y[3] = at(tmp[0][j], tmp[1][j], tmp[2][j], tmp[3][j], tmp[4][j], tmp[5][j])
				for i, v := range y {
					v += bias[c]
					if relu && v < 0 {
						v = 0
					}
					o[i*sy+j*so] = v
				}
			}
		}
	}
}
