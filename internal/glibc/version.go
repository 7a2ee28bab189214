package glibc

import (
	"bytes"
	"debug/elf"
	"fmt"
	"strconv"
	"strings"
)

// Version is a glibc version, such as 2.31.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is older than other.
func (v Version) Less(other Version) bool {
	if v.Major != other.Major {
		return v.Major < other.Major
	}
	return v.Minor < other.Minor
}

// parseSymbolVersion reads a symbol version name such as GLIBC_2.2.5 as
// 2.2 (the third number never matters for compatibility here). Other
// names (GLIBC_PRIVATE, GCC_3.0) are not glibc versions.
func parseSymbolVersion(name string) (Version, bool) {
	rest, ok := strings.CutPrefix(name, "GLIBC_")
	if !ok {
		return Version{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 {
		return Version{}, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return Version{}, false
	}
	return Version{major, minor}, true
}

// Needed returns the newest glibc version the shared object obj needs
// (its GLIBC_x.y version needs); ok is false when it needs none.
func Needed(obj []byte) (needed Version, ok bool, err error) {
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		return Version{}, false, err
	}
	defer f.Close()
	needs, err := f.DynamicVersionNeeds()
	if err != nil {
		return Version{}, false, err
	}
	for _, need := range needs {
		for _, dep := range need.Needs {
			if v, isGlibc := parseSymbolVersion(dep.Dep); isGlibc && (!ok || needed.Less(v)) {
				needed, ok = v, true
			}
		}
	}
	return needed, ok, nil
}

// Provided returns the newest GLIBC_ symbol version the C library at path
// defines (the release, or an older one when the release added no
// symbol). ok is false for a library that defines none (not glibc).
func Provided(path string) (provided Version, ok bool, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return Version{}, false, err
	}
	defer f.Close()
	names, err := definedVersions(f)
	if err != nil {
		return Version{}, false, fmt.Errorf("%s: %w", path, err)
	}
	for _, name := range names {
		if v, isGlibc := parseSymbolVersion(name); isGlibc && (!ok || provided.Less(v)) {
			provided, ok = v, true
		}
	}
	return provided, ok, nil
}

// definedVersions reads the names of the versions an object defines
// (SHT_GNU_verdef) straight from the section: debug/elf's
// DynamicVersions also reads the whole dynamic symbol table, ten times
// slower on libc.so.6, and slim exec pays for this check on every start.
func definedVersions(f *elf.File) ([]string, error) {
	var verdef *elf.Section
	for _, s := range f.Sections {
		if s.Type == elf.SHT_GNU_VERDEF {
			verdef = s
		}
	}
	if verdef == nil || int(verdef.Link) >= len(f.Sections) {
		return nil, nil
	}
	data, err := verdef.Data()
	if err != nil {
		return nil, err
	}
	strtab, err := f.Sections[verdef.Link].Data()
	if err != nil {
		return nil, err
	}
	order := f.ByteOrder
	var names []string
	for offset := 0; offset+20 <= len(data) && len(names) < 1024; {
		count, aux, next := order.Uint16(data[offset+6:]), order.Uint32(data[offset+12:]), order.Uint32(data[offset+16:])
		if at := offset + int(aux); count > 0 && at+8 <= len(data) {
			if name := cString(strtab, order.Uint32(data[at:])); name != "" {
				names = append(names, name)
			}
		}
		if next == 0 {
			break
		}
		offset += int(next)
	}
	return names, nil
}

func cString(table []byte, offset uint32) string {
	if int(offset) >= len(table) {
		return ""
	}
	end := bytes.IndexByte(table[offset:], 0)
	if end < 0 {
		return ""
	}
	return string(table[offset : int(offset)+end])
}
