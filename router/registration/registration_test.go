package registration

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func record(name string) Record {
	return Record{Name: name, Netns: "/run/netns/" + name, NetnsInode: 4026532000, Addr: netip.MustParseAddr("198.19.1.5"), Added: time.Unix(1, 0).UTC()}
}

func TestWriteReadListRemove(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"web", "db"} {
		if err := Write(dir, record(name)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Read(dir, "web")
	if err != nil || got != record("web") {
		t.Errorf("Read = %+v, %v", got, err)
	}
	st, _ := os.Stat(Path(dir, "web"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", st.Mode().Perm())
	}
	os.WriteFile(filepath.Join(Dir(dir), ".web.123.tmp"), []byte("half"), 0o600) // a writer that died
	list, errs := List(dir)
	if len(errs) != 0 || len(list) != 2 || list[0].Name != "db" || list[1].Name != "web" {
		t.Errorf("List = %+v, %v", list, errs)
	}
	if removed, err := Remove(dir, "web"); !removed || err != nil {
		t.Errorf("Remove = %v, %v", removed, err)
	}
	if removed, err := Remove(dir, "web"); removed || err != nil {
		t.Errorf("second Remove = %v, %v; want false, nil", removed, err)
	}
	if _, err := Read(dir, "web"); !os.IsNotExist(err) {
		t.Errorf("Read after Remove: %v", err)
	}
}

func TestListReportsBadRecords(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, record("good")); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"corrupt":  `{"name":"corrupt",`,
		"unknown":  `{"name":"unknown","netns":"/x","netns_inode":1,"addr":"198.19.1.9","added":"2026-01-01T00:00:00Z","colour":"red"}`,
		"misnamed": `{"name":"other","netns":"/x","netns_inode":1,"addr":"198.19.1.9","added":"2026-01-01T00:00:00Z"}`,
		"relative": `{"name":"relative","netns":"x","netns_inode":1,"addr":"198.19.1.9","added":"2026-01-01T00:00:00Z"}`,
		"noinode":  `{"name":"noinode","netns":"/x","addr":"198.19.1.9","added":"2026-01-01T00:00:00Z"}`,
	}
	for name, data := range bad {
		os.WriteFile(Path(dir, name), []byte(data), 0o600)
	}
	list, errs := List(dir)
	if len(list) != 1 || list[0].Name != "good" {
		t.Errorf("List kept %+v, want the good record only", list)
	}
	if len(errs) != len(bad) {
		t.Fatalf("List reported %d errors, want %d: %v", len(errs), len(bad), errs)
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), Dir(dir)) {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"web", "h1-c1", "3f9a0c1b2d4e", "a.b_c", strings.Repeat("x", 63)} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "-a", ".hidden", "a b", strings.Repeat("x", 64), "a\x00b"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
		if err := Write(t.TempDir(), record(bad)); err == nil {
			t.Errorf("Write with name %q succeeded", bad)
		}
	}
}
