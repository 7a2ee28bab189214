package strictjson

import (
	"strings"
	"testing"
)

type inner struct {
	Name string `json:"name"`
}

type outer struct {
	Port  uint16  `json:"port"`
	Items []inner `json:"items"`
	On    bool    `json:"on"`
}

func TestUnmarshalMessages(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown field", `{"prot": 1}`, `unknown field "prot"`},
		{"unknown nested field", `{"items": [{"nmae": "x"}]}`, `unknown field "nmae"`},
		{"trailing data", `{"port": 1} {"port": 2}`, "line 1, column 13: unexpected data after the JSON value"},
		{"trailing garbage", "{\"port\": 1}\nx", "line 2, column 1: unexpected data after the JSON value"},
		{"out of range", `{"port": -1}`, `line 1, column 11: field "port": -1 is out of range, want a number (uint16)`},
		{"wrong type", "{\n \"on\": \"yes\"}", `line 2, column 12: field "on" is a string, want true or false`},
		{"wrong nested type", `{"items": [{"name": 3}]}`, `field "items.name" is a number, want a string`},
		{"syntax", `{"port": 1,}`, "line 1, column 12: malformed JSON: invalid character '}'"},
		{"truncated", `{"port": 1`, "incomplete JSON"},
		{"empty", ``, "incomplete JSON"},
		{"not an object", `[1]`, "the value is an array, want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v outer
			err := Unmarshal([]byte(tt.in), &v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Unmarshal(%s) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
	var v outer
	if err := Unmarshal([]byte(`{"port": 80, "items": [{"name": "a"}], "on": true}`+"\n"), &v); err != nil || v.Port != 80 || v.Items[0].Name != "a" || !v.On {
		t.Errorf("valid input: %+v, %v", v, err)
	}
}

func TestUnmarshalPartGivesNoPosition(t *testing.T) {
	var v outer
	err := UnmarshalPart([]byte(`{"port": "80"}`), &v)
	if err == nil || err.Error() != `field "port" is a string, want a number (uint16)` {
		t.Errorf("UnmarshalPart = %v", err)
	}
}
