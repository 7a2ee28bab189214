package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// ratioColumn names the column comparing a scenario to the baseline.
func ratioColumn(scenario, baseline string) string { return scenario + "/" + baseline }

// WriteTable writes the report as a table, a metric per row: each
// scenario's median, then each other scenario's ratio to the baseline,
// followed by the settings and any failures.
func WriteTable(w io.Writer, r *Report) error {
	base := r.Baseline().Name
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	header := []string{"metric"}
	for _, sc := range r.Scenarios {
		header = append(header, sc.Name)
	}
	for _, sc := range r.Scenarios[1:] {
		header = append(header, ratioColumn(sc.Name, base))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, m := range r.Metrics {
		row := []string{m.Title()}
		for _, sc := range r.Scenarios {
			cell := "-"
			if v, ok := m.Median(sc.Name); ok {
				cell = formatValue(v)
			}
			row = append(row, cell)
		}
		for _, sc := range r.Scenarios[1:] {
			row = append(row, r.ratioCell(m, sc.Name))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeComparisons(w, r); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", r.settings())
	for _, sc := range r.Scenarios {
		fmt.Fprintf(w, "  %-8s client %s -> server %s at %s\n", sc.Name, sc.Client.Name, sc.Server.Name, sc.ServerAddr)
	}
	for _, note := range r.Notes {
		fmt.Fprintf(w, "  %s\n", note)
	}
	if r.Failed() {
		fmt.Fprintf(w, "\nfailed tests:\n")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s: %v\n", f.Test, f.Err)
		}
	}
	if r.FixedLoad && len(paperRows(r)) > 0 {
		fmt.Fprintf(w, "\nAgainst the paper (NSDI 2019, Slim vs Weave):\n\n")
		return WritePaperTable(w, r)
	}
	return nil
}

// writeComparisons writes the accelerated columns' ratios to the routed
// anchors (Report.Comparisons), a second table, if there are any.
func writeComparisons(w io.Writer, r *Report) error {
	pairs := r.Comparisons()
	if len(pairs) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nagainst routed containers (no tunnel):\n")
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	header := []string{"metric"}
	for _, p := range pairs {
		header = append(header, ratioColumn(p[0], p[1]))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, m := range r.Metrics {
		row := []string{m.Title()}
		for _, p := range pairs {
			row = append(row, ratioCell(m, p[0], p[1]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func (r *Report) settings() string {
	runs := "runs"
	if r.Runs == 1 {
		runs = "run"
	}
	settings := fmt.Sprintf("median of %d %s of %v per scenario, scenarios alternated; lab %s", r.Runs, runs, r.Duration, r.Lab)
	if r.Runs > 1 {
		settings += "\nratios: of the medians, then (lowest-highest) of the ratios within each run"
	}
	if r.FixedLoad {
		settings += fmt.Sprintf("\nfixed load: each application's peak in a closed loop, then an offered load of %.0f%% of the %s column's median peak, the same in every column; latency counted from when each request was due", 100*r.LoadFraction, overlayColumn)
	}
	return settings
}

// formatValue shows a measurement with about four significant digits,
// large values as whole numbers.
func formatValue(v float64) string {
	if math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func formatRatio(ratio float64) string { return strconv.FormatFloat(ratio, 'f', 2, 64) + "x" }

// ratioCell shows a scenario's ratio to the baseline and, over two runs or
// more, the range of the per-run ratios: "0.87x (0.80-0.95)". A reader can
// tell a change from this machine's noise by whether it leaves the range.
func (r *Report) ratioCell(m *MetricResult, scenario string) string {
	return ratioCell(m, scenario, r.Baseline().Name)
}

// ratioCell shows a scenario's ratio to another column.
func ratioCell(m *MetricResult, scenario, against string) string {
	ratio, ok := m.RatioTo(scenario, against)
	if !ok {
		return "-"
	}
	cell := formatRatio(ratio)
	if spread, ok := pairedChange(m, scenario, against); ok && spread.Runs >= 2 {
		cell += fmt.Sprintf(" (%.2f-%.2f)", spread.Min, spread.Max)
	}
	return cell
}

// The JSON document of a report.
type (
	jsonReport struct {
		Lab             string         `json:"lab"`
		DurationSeconds float64        `json:"duration_seconds"`
		Runs            int            `json:"runs"`
		Statistic       string         `json:"statistic"`
		Baseline        string         `json:"baseline"`
		Scenarios       []jsonScenario `json:"scenarios"`
		Metrics         []jsonMetric   `json:"metrics"`
		Failures        []jsonFailure  `json:"failures"`
		// The fixed-load mode's.
		Mode         string     `json:"mode,omitempty"`
		LoadFraction float64    `json:"load_fraction,omitempty"`
		Notes        []string   `json:"notes,omitempty"`
		Paper        []paperRow `json:"paper,omitempty"`
	}
	jsonScenario struct {
		Name       string `json:"name"`
		Client     string `json:"client"`
		Server     string `json:"server"`
		ServerAddr string `json:"server_addr"`
	}
	jsonMetric struct {
		ID     string             `json:"id"`
		Name   string             `json:"name"`
		Unit   string             `json:"unit"`
		Test   string             `json:"test"`
		Median map[string]float64 `json:"median"`
		Ratio  map[string]float64 `json:"ratio"`
		// Spread is the lowest and highest of the per-run ratios.
		Spread map[string][2]float64 `json:"ratio_spread"`
		Sample map[string][]float64  `json:"samples"`
	}
	jsonFailure struct {
		Test  string `json:"test"`
		Error string `json:"error"`
	}
)

// WriteJSON writes the report as an indented JSON document: every metric
// with its samples and median per scenario and its ratios to the baseline
// (keyed "scenario/baseline"), and the accelerated columns' to the
// routed ones (Report.Comparisons), each with the range of the per-run ratios, plus
// the failures.
func WriteJSON(w io.Writer, r *Report) error {
	doc := jsonReport{
		Lab:             r.Lab,
		DurationSeconds: r.Duration.Seconds(),
		Runs:            r.Runs,
		Statistic:       "median",
		Baseline:        r.Baseline().Name,
		Scenarios:       []jsonScenario{},
		Metrics:         []jsonMetric{},
		Failures:        []jsonFailure{},
	}
	for _, sc := range r.Scenarios {
		doc.Scenarios = append(doc.Scenarios, jsonScenario{
			Name: sc.Name, Client: sc.Client.Name, Server: sc.Server.Name, ServerAddr: sc.ServerAddr.String(),
		})
	}
	for _, m := range r.Metrics {
		jm := jsonMetric{
			ID: m.ID, Name: m.Label, Unit: m.Unit, Test: m.Test,
			Median: map[string]float64{}, Ratio: map[string]float64{}, Spread: map[string][2]float64{}, Sample: map[string][]float64{},
		}
		for _, sc := range r.Scenarios {
			if v, ok := m.Median(sc.Name); ok {
				jm.Median[sc.Name] = v
				jm.Sample[sc.Name] = m.Samples[sc.Name]
			}
		}
		pairs := r.Comparisons()
		for _, sc := range r.Scenarios[1:] {
			pairs = append(pairs, [2]string{sc.Name, doc.Baseline})
		}
		for _, p := range pairs {
			if ratio, ok := m.RatioTo(p[0], p[1]); ok {
				jm.Ratio[ratioColumn(p[0], p[1])] = ratio
			}
			if spread, ok := pairedChange(m, p[0], p[1]); ok {
				jm.Spread[ratioColumn(p[0], p[1])] = [2]float64{spread.Min, spread.Max}
			}
		}
		doc.Metrics = append(doc.Metrics, jm)
	}
	for _, f := range r.Failures {
		doc.Failures = append(doc.Failures, jsonFailure{Test: f.Test, Error: f.Err.Error()})
	}
	doc.Notes = r.Notes
	if r.FixedLoad {
		doc.Mode, doc.LoadFraction, doc.Paper = "fixed-load", r.LoadFraction, paperRows(r)
	}
	if r.Supervised {
		doc.Mode, doc.Notes = "supervised", r.Notes
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
