package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseProperties(t *testing.T) {
	type kv struct {
		key, value string
		line       int
	}
	tests := []struct {
		name string
		in   string
		want []kv
	}{
		{"empty", "", nil},
		{"only comments and blanks", "# a\n! b\n   \n\t# c\n\n", nil},
		{"equals", "a=b", []kv{{"a", "b", 1}}},
		{"colon", "a:b", []kv{{"a", "b", 1}}},
		{"blank separator", "a b", []kv{{"a", "b", 1}}},
		{"blanks around equals", "  a \t=\f b", []kv{{"a", "b", 1}}},
		{"blanks around colon", "a : b", []kv{{"a", "b", 1}}},
		{"trailing blanks kept", "a=b  ", []kv{{"a", "b  ", 1}}},
		{"key only", "a", []kv{{"a", "", 1}}},
		{"key and equals", "a=", []kv{{"a", "", 1}}},
		{"empty key", "=b", []kv{{"", "b", 1}}},
		{"second separator belongs to value", "a==b", []kv{{"a", "=b", 1}}},
		{"colon in value", "a=PLAINTEXT://h:1", []kv{{"a", "PLAINTEXT://h:1", 1}}},
		{"hash in value", "a=b#c", []kv{{"a", "b#c", 1}}},
		{"line numbers", "# c\n\na=1\nb=2\n", []kv{{"a", "1", 3}, {"b", "2", 4}}},
		{"crlf", "a=1\r\nb=2\r\n", []kv{{"a", "1", 1}, {"b", "2", 2}}},
		{"cr", "a=1\rb=2", []kv{{"a", "1", 1}, {"b", "2", 2}}},
		{"continuation", "a=one,\\\n    two\nb=3", []kv{{"a", "one,two", 1}, {"b", "3", 3}}},
		{"continuation twice", "a=x\\\n y\\\n\tz", []kv{{"a", "xyz", 1}}},
		{"continuation crlf", "a=x\\\r\n y", []kv{{"a", "xy", 1}}},
		{"continued line starting with hash is not a comment", "a=x\\\n#y", []kv{{"a", "x#y", 1}}},
		{"comment does not continue", "# c\\\na=1", []kv{{"a", "1", 2}}},
		{"blank continuation ends the line", "a=x\\\n   \nb=1", []kv{{"a", "x", 1}, {"b", "1", 3}}},
		{"continuation at end of input", "a=x\\", []kv{{"a", "x", 1}}},
		{"even backslashes do not continue", "a=x\\\\\nb=1", []kv{{"a", `x\`, 1}, {"b", "1", 2}}},
		{"continuation in key", "lo\\\n  g=1", []kv{{"log", "1", 1}}},
		{"escapes", `a=t\tn\nr\rf\f\\q\z`, []kv{{"a", "t\tn\nr\rf\f\\qz", 1}}},
		{"escaped separators in key", `a\=b\:c\ d=e`, []kv{{"a=b:c d", "e", 1}}},
		{"escaped leading blank in value", `a=\ b`, []kv{{"a", " b", 1}}},
		{"unicode escape", `a=caf\u00e9`, []kv{{"a", "café", 1}}},
		{"unicode escape upper hex", `a=\u00C9`, []kv{{"a", "É", 1}}},
		{"surrogate pair", `a=\uD83D\uDE00`, []kv{{"a", "😀", 1}}},
		{"utf-8 input", "a=héllo", []kv{{"a", "héllo", 1}}},
		{"duplicates are all returned", "a=1\na=2", []kv{{"a", "1", 1}, {"a", "2", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProperties(tt.in)
			if err != nil {
				t.Fatalf("parseProperties(%q): %v", tt.in, err)
			}
			var gotKV []kv
			for _, p := range got {
				gotKV = append(gotKV, kv(p))
			}
			if !reflect.DeepEqual(gotKV, tt.want) {
				t.Errorf("parseProperties(%q) = %+v, want %+v", tt.in, gotKV, tt.want)
			}
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantErr  string
	}{
		{"short unicode escape", "a=1\nb=\\u12", 2, `malformed \uXXXX escape`},
		{"bad hex", "a=\\u12zz", 1, `malformed \uXXXX escape "\\u12zz"`},
		{"bad escape in key", "\\uxyzw=1", 1, "key: malformed"},
		{"error reports the first line of a continued line", "\n a=x\\\n\\u1", 2, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseProperties(tt.in)
			var le *lineError
			if !errors.As(err, &le) {
				t.Fatalf("parseProperties(%q) error = %v, want a lineError", tt.in, err)
			}
			if le.line != tt.wantLine || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v (line %d), want line %d containing %q", err, le.line, tt.wantLine, tt.wantErr)
			}
		})
	}
}

func TestEscapePropertyRoundTrip(t *testing.T) {
	cases := []struct{ key, value string }{
		{"a", "b"},
		{"with space", " leading and trailing "},
		{"#hash", "#not a comment"},
		{"!bang", "!"},
		{"a=b:c", "=starts with equals"},
		{"k", ":starts with colon"},
		{"ctl", "tab\tnl\ncr\rff\f"},
		{`back\slash`, `ends with backslash\`},
		{"k", "unicode é 😀"},
		{"", ""},
	}
	for _, c := range cases {
		line := escapeProperty(c.key, true) + "=" + escapeProperty(c.value, false)
		got, err := parseProperties(line)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		if len(got) != 1 || got[0].key != c.key || got[0].value != c.value {
			t.Errorf("round trip of %q=%q through %q gave %+v", c.key, c.value, line, got)
		}
	}
}

// FuzzParseProperties checks that any input parses or fails without
// panicking, that line numbers stay in range, and that escaped pairs read
// back unchanged.
func FuzzParseProperties(f *testing.F) {
	f.Add("a=b\n# c\nd: e\\\n  f\n", "key", "value")
	f.Add("\\u00e9=\\t\r\n!x", " k", "\\v")
	f.Fuzz(func(t *testing.T, text, key, value string) {
		props, err := parseProperties(text)
		if err == nil {
			n := len(splitNaturalLines(text))
			for _, p := range props {
				if p.line < 1 || p.line > n {
					t.Fatalf("line %d out of 1..%d for %q", p.line, n, text)
				}
			}
		}
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return
		}
		line := escapeProperty(key, true) + "=" + escapeProperty(value, false)
		got, err := parseProperties(line)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		if len(got) != 1 || got[0].key != key || got[0].value != value {
			t.Fatalf("round trip of %q=%q through %q gave %+v", key, value, line, got)
		}
	})
}
