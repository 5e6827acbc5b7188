package config

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// property is one key/value pair of a properties file, with the 1-based
// line on which its logical line starts (for error messages).
type property struct {
	key   string
	value string
	line  int
}

// parseProperties reads the Java properties format as
// java.util.Properties.load does, with one difference: the input is UTF-8,
// not ISO-8859-1, since that is what people's editors write.
//
//   - Natural lines end with \n, \r or \r\n.
//   - A line whose first non-blank character is '#' or '!' is a comment;
//     blank lines are skipped. A comment never continues onto the next line.
//   - A line ending in an odd number of backslashes continues on the next
//     line, whose leading blanks are dropped.
//   - The key runs to the first unescaped '=', ':' or blank; blanks around
//     one separator are skipped; the rest of the logical line is the value,
//     trailing blanks included (Config trims values, as Kafka does).
//   - Escapes: \t \n \r \f, \uXXXX (surrogate pairs combined), and \c for
//     any other c stands for c itself.
//
// Blanks are space, tab and form feed, as in Java.
func parseProperties(text string) ([]property, error) {
	lines := splitNaturalLines(text)
	var props []property
	for i := 0; i < len(lines); {
		start := i + 1
		s := trimLeftBlanks(lines[i])
		i++
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		logical := s
		if endsInContinuation(s) {
			var b strings.Builder
			for endsInContinuation(s) {
				b.WriteString(s[:len(s)-1])
				if i >= len(lines) {
					// A continuation at end of input continues into
					// nothing; Java drops the backslash the same way.
					s = ""
					break
				}
				s = trimLeftBlanks(lines[i])
				i++
			}
			b.WriteString(s)
			logical = b.String()
		}
		rawKey, rawValue := splitKeyValue(logical)
		key, err := unescape(rawKey)
		if err != nil {
			return nil, &lineError{line: start, err: fmt.Errorf("key: %w", err)}
		}
		value, err := unescape(rawValue)
		if err != nil {
			return nil, &lineError{line: start, err: fmt.Errorf("value of %q: %w", key, err)}
		}
		props = append(props, property{key: key, value: value, line: start})
	}
	return props, nil
}

// lineError is a syntax error on a line of a properties file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// escapeProperty escapes a key or value so that parseProperties reads it
// back unchanged.
func escapeProperty(s string, isKey bool) string {
	var b strings.Builder
	for i, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		case ' ':
			// Blanks end a key, and leading blanks of a value are skipped.
			if isKey || i == 0 {
				b.WriteString(`\ `)
			} else {
				b.WriteByte(' ')
			}
		case '=', ':':
			// These end a key; a value's first '=' or ':' would be read
			// as a second separator.
			if isKey || i == 0 {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		case '#', '!':
			// Only a line's first character starts a comment.
			if isKey && i == 0 {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// splitNaturalLines splits on \n, \r and \r\n. A final line terminator
// does not produce an empty last line.
func splitNaturalLines(text string) []string {
	var lines []string
	for len(text) > 0 {
		j := strings.IndexAny(text, "\r\n")
		if j < 0 {
			lines = append(lines, text)
			break
		}
		lines = append(lines, text[:j])
		if text[j] == '\r' && j+1 < len(text) && text[j+1] == '\n' {
			j++
		}
		text = text[j+1:]
	}
	return lines
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeftBlanks(s string) string {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return s[i:]
}

// endsInContinuation reports whether s ends in an odd number of
// backslashes: an even number is a run of escaped backslashes.
func endsInContinuation(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line (no leading blanks) into its raw,
// still escaped, key and value.
func splitKeyValue(line string) (key, value string) {
	keyEnd := len(line)
	escaped := false
	for j := 0; j < len(line); j++ {
		c := line[j]
		if escaped {
			escaped = false
			continue
		}
		if c == '\\' {
			escaped = true
			continue
		}
		if c == '=' || c == ':' || isBlank(c) {
			keyEnd = j
			break
		}
	}
	rest := line[keyEnd:]
	rest = trimLeftBlanks(rest)
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = trimLeftBlanks(rest[1:])
	}
	return line[:keyEnd], rest
}

// unescape resolves the escapes of a raw key or value.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			// Only reachable for a trailing backslash left by a
			// continuation at end of input; Java drops it too.
			break
		}
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, err := hex4(s[i+1:])
			if err != nil {
				return "", err
			}
			i += 4
			// A UTF-16 surrogate pair written as two escapes is one
			// character, as Java reads it.
			if utf16.IsSurrogate(rune(r)) && strings.HasPrefix(s[i+1:], `\u`) {
				if lo, err := hex4(s[i+3:]); err == nil {
					if pair := utf16.DecodeRune(rune(r), rune(lo)); pair != '\uFFFD' {
						b.WriteRune(pair)
						i += 6
						continue
					}
				}
			}
			b.WriteRune(rune(r))
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// hex4 reads the four hex digits of a \uXXXX escape.
func hex4(s string) (uint16, error) {
	if len(s) < 4 {
		return 0, fmt.Errorf("malformed \\uXXXX escape: want 4 hex digits")
	}
	var v uint16
	for _, c := range []byte(s[:4]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("malformed \\uXXXX escape %q", `\u`+s[:4])
		}
		v = v<<4 | uint16(d)
	}
	return v, nil
}
