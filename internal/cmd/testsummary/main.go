// Command testsummary reads `go test -json` on stdin, prints what a plain
// `go test` run would (a line per package, the output of failed tests), a
// line per skipped test with its reason, and ends with one line: how many
// tests passed, failed and were skipped (together: how many ran). It exits
// 1 if a test or a package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

func main() {
	s := newSummary(os.Stdout)
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stdout, s.line())
	if s.failed > 0 || s.packagesFailed > 0 {
		os.Exit(1)
	}
}

type summary struct {
	out                          io.Writer
	output                       map[string][]string // by package/test
	ran, passed, failed, skipped int
	packagesFailed               int
	skips                        []string
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, output: map[string][]string{}}
}

func (s *summary) read(in io.Reader) error {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		line := scanner.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(s.out, string(line)) // build errors and other plain text
			continue
		}
		s.add(e)
	}
	return scanner.Err()
}

func (s *summary) add(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "output", "build-output":
		s.output[key] = append(s.output[key], e.Output)
		if e.Action == "build-output" {
			fmt.Fprint(s.out, e.Output)
		}
		return
	case "pass", "fail", "skip":
	default:
		return
	}
	if e.Test == "" {
		s.endPackage(e, key)
		return
	}
	switch e.Action {
	case "pass":
		s.passed++
	case "fail":
		s.failed++
		fmt.Fprintf(s.out, "--- FAIL: %s (%s)\n%s", e.Test, e.Package, strings.Join(s.output[key], ""))
	case "skip":
		s.skipped++
		s.skips = append(s.skips, fmt.Sprintf("%s (%s)", e.Test, skipReason(s.output[key])))
	}
	delete(s.output, key)
}

func (s *summary) endPackage(e event, key string) {
	switch e.Action {
	case "pass":
		fmt.Fprintf(s.out, "ok  \t%s\t%.1fs\n", e.Package, e.Elapsed)
	case "skip":
		fmt.Fprintf(s.out, "?   \t%s\t[no test files]\n", e.Package)
	case "fail":
		s.packagesFailed++
		// Output outside any test: a panic, a TestMain failure, a timeout.
		fmt.Fprintf(s.out, "%sFAIL\t%s\t%.1fs\n", strings.Join(s.output[key], ""), e.Package, e.Elapsed)
	}
	delete(s.output, key)
}

// skipReason is the message of t.Skip: the last output line that is not
// the "--- SKIP" line itself, without the file:line prefix.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		if _, rest, ok := strings.Cut(l, ".go:"); ok {
			if _, msg, ok := strings.Cut(rest, ": "); ok {
				return msg
			}
		}
		return l
	}
	return "no reason given"
}

// line is the closing line, in the form CI reads ("N passed, N failed,
// N skipped" after one word and a colon); a line per skip, with its
// reason, comes before it.
func (s *summary) line() string {
	var b strings.Builder
	sort.Strings(s.skips)
	for _, skip := range s.skips {
		b.WriteString("skipped: " + skip + "\n")
	}
	if s.packagesFailed > 0 {
		fmt.Fprintf(&b, "packages that failed outside a test: %d\n", s.packagesFailed)
	}
	fmt.Fprintf(&b, "tests: %d passed, %d failed, %d skipped", s.passed, s.failed, s.skipped)
	return b.String()
}
