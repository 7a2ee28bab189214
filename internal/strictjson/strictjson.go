// Package strictjson decodes JSON that people write (configuration files,
// control requests) strictly: a field the target does not have is an
// error, and so is anything after the value, and every error says where
// and what in words, without Go type names.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Unmarshal decodes data into v, refusing unknown fields and trailing
// data. Errors give the line and column.
func Unmarshal(data []byte, v any) error {
	return unmarshal(data, v, true)
}

// UnmarshalPart is Unmarshal for a part of a document (one element of
// an array, say) that the caller names in its error: errors give no line
// and column, which would be the part's, not the document's.
func UnmarshalPart(data []byte, v any) error {
	return unmarshal(data, v, false)
}

func unmarshal(data []byte, v any, where bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		err = explain(data, err)
		if !where {
			err = errors.New(stripPosition(err.Error()))
		}
		return err
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		rest := data[end:]
		next := end + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
		return fmt.Errorf("%s: unexpected data after the JSON value", position(data, next+1))
	}
	return nil
}

// explain rewrites the decoder's errors in the user's terms.
func explain(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("incomplete JSON: it ends too early")
	case errors.As(err, &syntax):
		return fmt.Errorf("%s: malformed JSON: %s", position(data, syntax.Offset), strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typeErr):
		what := "the value"
		if typeErr.Field != "" {
			what = fmt.Sprintf("field %q", typeErr.Field)
		}
		want := kind(typeErr.Type.Kind().String())
		if n, ok := strings.CutPrefix(typeErr.Value, "number "); ok {
			return fmt.Errorf("%s: %s: %s is out of range, want %s", position(data, typeErr.Offset), what, n, want)
		}
		return fmt.Errorf("%s: %s is %s, want %s", position(data, typeErr.Offset), what, article(typeErr.Value), want)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", name)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// article puts "a" or "an" before a JSON kind.
func article(value string) string {
	if strings.HasPrefix(value, "o") || strings.HasPrefix(value, "a") {
		return "an " + value
	}
	return "a " + value
}

// kind names a Go kind as a JSON value.
func kind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number (" + k + ")"
	case k == "bool":
		return "true or false"
	case k == "slice", k == "array":
		return "an array"
	case k == "struct", k == "map":
		return "an object"
	}
	return "a " + k
}

// stripPosition removes the "line L, column C: " that starts a message.
func stripPosition(msg string) string {
	if strings.HasPrefix(msg, "line ") {
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			return rest
		}
	}
	return msg
}

// position is "line L, column C" of the last byte the decoder read
// before offset: the offending character, or the end of the value.
func position(data []byte, offset int64) string {
	offset = min(max(offset-1, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}
