package gen

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Print writes the plan readably: the convolutions' packed weights, then each
// program's steps with their buffers, algorithm, tile and partition, and the arenas.
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "plan for %s (%s), package %s\n", p.Model.Name, p.Source, p.Package)
	if len(p.Convs) > 0 {
		fmt.Fprintf(w, "\nconvolutions (packed weights, %d output channels per block):\n", 32)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  layer\tgroups\tblocks/group\tforward pack\tbatch norm folded (eval)\tinput gradient\tgradient halo")
		for _, c := range p.Convs {
			bn := "-"
			if c.BN != nil {
				bn = c.BN.Name
			}
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d floats\t%s\t%s\t%dx%d\n", c.Layer.Name, c.Groups, c.OCB, c.PackSize, bn, c.BackData, c.HaloY, c.HaloX)
		}
		tw.Flush()
	}
	for _, prog := range []*Program{p.Eval, p.Grad} {
		fmt.Fprintf(w, "\n%s program: %d steps, arena %d floats", prog.Name, len(prog.Steps), prog.Arena)
		if prog.IntArena > 0 {
			fmt.Fprintf(w, " + %d int32", prog.IntArena)
		}
		fmt.Fprintf(w, " per sample\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tstep\tfused\talgorithm\ttile\tpartition\tin\tout\tarena offsets (in, out)")
		for i, st := range prog.Steps {
			fused := ""
			for j, l := range st.Fused {
				if j > 0 {
					fused += ","
				}
				fused += l.Kind.String()
			}
			in := "user input (NCHW)"
			inOff := "-"
			if st.In != nil {
				in, inOff = st.In.String(), fmt.Sprint(st.In.Off)
			}
			part := st.Part.String()
			if prog.Name == "grad" && st.BackPart != "" {
				part += "; back: " + st.BackPart
			}
			fmt.Fprintf(tw, "  %d\t%s %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s, %d\n", i, st.Op, st.Name(), dash(fused), dash(st.Algo), dash(st.Tile), part, in, st.Out, inOff, st.Out.Off)
		}
		tw.Flush()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
