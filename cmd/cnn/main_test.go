package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsageListsSubcommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"verify", "bench", "classify", "train", "export"} {
		if !strings.Contains(out.String(), "  "+c+" ") {
			t.Errorf("usage lacks %q:\n%s", c, out.String())
		}
	}
	if code := run([]string{"nosuch"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
