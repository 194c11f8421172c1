package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInfo(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"info", "alexnet"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; last != "total params=61100840 macs=714188480" {
		t.Errorf("last line %q", last)
	}
	if !strings.Contains(out.String(), "Conv2d(3, 64, 11, stride=4, padding=2)") ||
		!strings.Contains(out.String(), "classifier.6") || !strings.Contains(out.String(), "256×6×6") {
		t.Errorf("table lacks expected rows:\n%s", out.String())
	}
}

func TestInfoFileAndErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cnn")
	if err := os.WriteFile(bad, []byte("net bad\ninput 3 8 8\nfeatures\n  conv 8 k3 q1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"info", bad}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := bad + ":4:13: conv: unknown option \"q\""; !strings.HasPrefix(errb.String(), want) {
		t.Errorf("stderr %q, want prefix %q", errb.String(), want)
	}
	errb.Reset()
	if code := run([]string{"info", "nosuchnet"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no built-in spec \"nosuchnet\"") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"frob"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
