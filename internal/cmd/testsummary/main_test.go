package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: kernel feature missing: netkit (EOPNOTSUPP)\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
{"Action":"fail","Package":"p","Elapsed":1.5}
not json: a build error
`

func TestSummaryCountsAndReasons(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	if err := s.read(strings.NewReader(sample)); err != nil {
		t.Fatal(err)
	}
	want := "skipped: TestB (kernel feature missing: netkit (EOPNOTSUPP))\n" +
		"packages that failed outside a test: 1\n" +
		"tests: 1 passed, 1 failed, 1 skipped"
	if got := s.line(); got != want {
		t.Errorf("line:\n got %s\nwant %s", got, want)
	}
	for _, part := range []string{"--- FAIL: TestC (p)", "boom", "FAIL\tp", "not json: a build error"} {
		if !strings.Contains(out.String(), part) {
			t.Errorf("output lacks %q:\n%s", part, out.String())
		}
	}
}
