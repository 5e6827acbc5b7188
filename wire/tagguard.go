package wire

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The tag guard protects the decoder from tag-count bombs.
//
// A flexible-version message ends every struct with a tagged-field section:
// a uvarint count, then that many (key, size, bytes) entries. kmsg (v1.15)
// decodes such a section with `for n := count; n > 0; n--`, and keeps
// looping after the input runs out: a count of 2^32-1 in an 8-byte body
// costs minutes of CPU on the connection's reader, before any error. A
// valid section needs at least two bytes per entry, so a count above half
// the bytes left can only belong to a request kmsg would reject anyway.
//
// Before kmsg sees a flexible body, guardBody walks it along the same path
// kmsg's decoder takes and rejects it if a tag count exceeds what the rest
// of the body could hold. The walk needs the message's layout, which is
// derived from kmsg itself, once per API key and version: reflection gives
// the fields of kmsg's structs in wire order and their Go types, and the
// encoder tells which fields a version carries and which of them are
// tagged (a tagged field's value appears inside the tag section). No
// layout is written by hand, so new kmsg versions keep it right; the
// tests check every registered API and flexible version against kmsg's
// own encoder and decoder.
//
// Remove this file once kmsg stops its tag loops at the end of input.

// guardKind is how one field is laid out on the wire (flexible versions).
type guardKind uint8

const (
	kindFixed  guardKind = iota // ints, bools, uuids: size bytes
	kindBytes                   // compact (nullable) string or bytes: uvarint length+1, then the bytes
	kindArray                   // compact array: uvarint count+1, then the elements
	kindStruct                  // a struct: its fields, then its tag section
)

type guardField struct {
	kind guardKind
	size int          // kindFixed
	elem *guardField  // kindArray
	st   *guardStruct // guardStruct
}

type guardStruct struct {
	fields []guardField
	// tagStructs are the known tags whose content is itself a struct
	// (with a tag section of its own), by tag key.
	tagStructs map[uint32]*guardStruct
}

// walkResult says how a walk ended.
type walkResult uint8

const (
	walkOK        walkResult = iota // the structure was walked
	walkExhausted                   // the input ran out where kmsg's reader would go bad; it reads only zeros after
	walkBomb                        // a tag count exceeds what the input could hold
)

// guardCache holds the derived layout per API key and version: a
// *guardStruct, or an error when the layout could not be derived (then
// the request is decoded unguarded, and the error is logged once).
var guardCache sync.Map // uint32(key)<<16 | uint32(uint16(version)) → guardEntry

type guardEntry struct {
	st  *guardStruct
	err error
}

// requestGuard returns the layout of key's requests at a flexible version.
func requestGuard(key, version int16) (*guardStruct, error, bool) {
	ck := uint32(uint16(key))<<16 | uint32(uint16(version))
	if e, ok := guardCache.Load(ck); ok {
		return e.(guardEntry).st, e.(guardEntry).err, false
	}
	st, err := deriveRequestGuard(key, version)
	_, loaded := guardCache.LoadOrStore(ck, guardEntry{st, err})
	return st, err, !loaded
}

// guardBody reports whether body is safe to hand to kmsg: false means a
// tag count in it exceeds the bytes left after it.
func guardBody(st *guardStruct, body []byte) bool {
	_, r := st.walk(body)
	return r != walkBomb
}

// walk follows kmsg's decoding of one struct over b: fields in order, then
// the tag section. It mirrors kbin's reader: where the reader would go
// bad (and from then on return zeros, so that no further loop runs), the
// walk stops with walkExhausted.
func (st *guardStruct) walk(b []byte) ([]byte, walkResult) {
	for i := range st.fields {
		var r walkResult
		if b, r = st.fields[i].walk(b); r != walkOK {
			return b, r
		}
	}
	count, n := guardUvarint(b)
	if n <= 0 {
		return nil, walkExhausted
	}
	b = b[n:]
	if uint64(count)*2 > uint64(len(b)) {
		return b, walkBomb
	}
	for range count {
		key, n := guardUvarint(b)
		if n <= 0 {
			return nil, walkExhausted
		}
		b = b[n:]
		size, n := guardUvarint(b)
		if n <= 0 || int64(size) > int64(len(b)-n) {
			return nil, walkExhausted
		}
		content := b[n : n+int(size)]
		b = b[n+int(size):]
		if inner := st.tagStructs[key]; inner != nil {
			// kmsg decodes a known struct tag with a reader of its own
			// and stops at the first error inside it.
			if _, r := inner.walk(content); r != walkOK {
				return b, r
			}
		}
	}
	return b, walkOK
}

func (f *guardField) walk(b []byte) ([]byte, walkResult) {
	switch f.kind {
	case kindFixed:
		if len(b) < f.size {
			return nil, walkExhausted
		}
		return b[f.size:], walkOK
	case kindBytes:
		v, n := guardUvarint(b)
		if n <= 0 {
			return nil, walkExhausted
		}
		b = b[n:]
		l := int64(v) - 1
		if l < 0 { // null (or, for a non-nullable string, a reader gone bad: walking on only over-rejects)
			return b, walkOK
		}
		if l > int64(len(b)) {
			return nil, walkExhausted
		}
		return b[l:], walkOK
	case kindArray:
		v, n := guardUvarint(b)
		if n <= 0 {
			return nil, walkExhausted
		}
		b = b[n:]
		l := int32(v) - 1 // kbin's CompactArrayLen, wrap-around included
		if int64(l) > int64(len(b)) {
			return nil, walkExhausted
		}
		// Every element takes at least one byte or exhausts the input,
		// so this loop is bounded by len(b).
		for i := int32(0); i < l; i++ {
			var r walkResult
			if b, r = f.elem.walk(b); r != walkOK {
				return b, r
			}
		}
		return b, walkOK
	case kindStruct:
		return f.st.walk(b)
	}
	return b, walkOK
}

// guardUvarint decodes a uvarint as kbin does: at most five bytes, the
// fifth at most 0x0f; n <= 0 on failure.
func guardUvarint(b []byte) (uint32, int) {
	var x uint32
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0
		}
		c := b[i]
		if i == 4 {
			if c > 0x0f {
				return 0, -5
			}
			return x | uint32(c)<<28, 5
		}
		x |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return x, i + 1
		}
	}
	return 0, 0
}

// Layout derivation.

// deriveRequestGuard derives the layout of key's requests at version,
// which must be flexible.
func deriveRequestGuard(key, version int16) (*guardStruct, error) {
	proto := kmsg.RequestForKey(key)
	if proto == nil {
		return nil, fmt.Errorf("no kmsg request for key %d", key)
	}
	encode := func(mod func(reflect.Value)) []byte {
		r := kmsg.RequestForKey(key)
		r.SetVersion(version)
		if mod != nil {
			mod(reflect.ValueOf(r).Elem())
		}
		return r.AppendTo(nil)
	}
	st, err := deriveStruct(reflect.TypeOf(proto).Elem(), encode, true)
	if err != nil {
		return nil, fmt.Errorf("derive layout of %s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	return st, nil
}

var tagsType = reflect.TypeOf(kmsg.Tags{})

// deriveStruct derives the layout of struct type rt. encode encodes the
// enclosing request with one instance of rt modified by mod (nil: left at
// its defaults).
func deriveStruct(rt reflect.Type, encode func(mod func(reflect.Value)) []byte, top bool) (*guardStruct, error) {
	st := &guardStruct{}
	base := encode(nil)
	lastDiff := -1
	for i := 0; i < rt.NumField(); i++ {
		sf := rt.Field(i)
		if sf.Type == tagsType || (top && sf.Name == "Version") || !sf.IsExported() {
			continue
		}
		probe := func(v reflect.Value) { probeField(v.Field(i)) }
		changed := encode(probe)
		if bytes.Equal(base, changed) {
			continue // not in this version
		}
		d := firstDiff(base, changed)
		if key, size, ok := tagInsertion(base, changed, d); ok {
			if sf.Type.Kind() == reflect.Struct {
				inner, err := fixedStruct(sf.Type)
				if err != nil {
					return nil, fmt.Errorf("tagged field %s: %w", sf.Name, err)
				}
				if want := inner.fixedLen() + 1; size != want {
					return nil, fmt.Errorf("tagged field %s: content is %d bytes, its fields and tag section %d", sf.Name, size, want)
				}
				if st.tagStructs == nil {
					st.tagStructs = map[uint32]*guardStruct{}
				}
				st.tagStructs[key] = inner
			} else if hasNestedTags(sf.Type) {
				return nil, fmt.Errorf("tagged field %s of type %s holds tag sections", sf.Name, sf.Type)
			}
			continue
		}
		if d <= lastDiff {
			return nil, fmt.Errorf("field %s is not encoded after the field before it", sf.Name)
		}
		lastDiff = d
		f, err := deriveField(sf.Type, func(mod func(reflect.Value)) []byte {
			return encode(func(v reflect.Value) { mod(v.Field(i)) })
		})
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", sf.Name, err)
		}
		if f.kind == kindFixed && len(changed) != len(base) {
			return nil, fmt.Errorf("field %s of type %s is not fixed-width on the wire", sf.Name, sf.Type)
		}
		st.fields = append(st.fields, f)
	}
	return st, nil
}

// deriveField derives the layout of a regular field of type t. encode
// encodes the request with the field set by mod.
func deriveField(t reflect.Type, encode func(mod func(reflect.Value)) []byte) (guardField, error) {
	if size, ok := fixedSize(t); ok {
		if t.Kind() == reflect.Int32 || t.Kind() == reflect.Uint32 {
			// An int32 written as a varint would change length.
			a := encode(func(v reflect.Value) { setInt(v, 1) })
			b := encode(func(v reflect.Value) { setInt(v, 1<<30) })
			if len(a) != len(b) {
				return guardField{}, fmt.Errorf("%s is variable-width on the wire", t)
			}
		}
		return guardField{kind: kindFixed, size: size}, nil
	}
	switch {
	case t.Kind() == reflect.String,
		t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String,
		t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return guardField{kind: kindBytes}, nil
	case t.Kind() == reflect.Slice:
		et := t.Elem()
		withOne := func(mod func(reflect.Value)) func(reflect.Value) {
			return func(v reflect.Value) {
				e := newDefault(et)
				if mod != nil {
					mod(e)
				}
				v.Set(reflect.Append(reflect.MakeSlice(t, 0, 1), e))
			}
		}
		if et.Kind() == reflect.Struct {
			inner, err := deriveStruct(et, func(mod func(reflect.Value)) []byte { return encode(withOne(mod)) }, false)
			if err != nil {
				return guardField{}, err
			}
			return guardField{kind: kindArray, elem: &guardField{kind: kindStruct, st: inner}}, nil
		}
		elem, err := deriveField(et, func(mod func(reflect.Value)) []byte { return encode(withOne(mod)) })
		if err != nil {
			return guardField{}, err
		}
		return guardField{kind: kindArray, elem: &elem}, nil
	}
	return guardField{}, fmt.Errorf("unsupported field type %s", t)
}

// fixedStruct is the layout of a struct made of fixed-width fields and a
// tag section, as the struct-valued tags of requests are.
func fixedStruct(t reflect.Type) (*guardStruct, error) {
	st := &guardStruct{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Type == tagsType {
			continue
		}
		size, ok := fixedSize(sf.Type)
		if !ok {
			return nil, fmt.Errorf("struct tag %s has non-fixed field %s", t, sf.Name)
		}
		st.fields = append(st.fields, guardField{kind: kindFixed, size: size})
	}
	return st, nil
}

func fixedSize(t reflect.Type) (int, bool) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Uint8:
		return 1, true
	case reflect.Int16, reflect.Uint16:
		return 2, true
	case reflect.Int32, reflect.Uint32:
		return 4, true
	case reflect.Int64, reflect.Uint64, reflect.Float64:
		return 8, true
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return t.Len(), true
		}
	}
	return 0, false
}

// hasNestedTags reports whether values of t contain structs (and so tag
// sections of their own).
func hasNestedTags(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		return t != tagsType
	case reflect.Slice, reflect.Pointer, reflect.Array:
		return hasNestedTags(t.Elem())
	}
	return false
}

// probeField sets v to a value that encodes differently from its current
// (default) one, and non-default so that a tagged field is written.
func probeField(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Array:
		if v.Len() > 0 {
			e := v.Index(0)
			if e.Kind() == reflect.Uint8 {
				e.SetUint(e.Uint() ^ 1)
			}
		}
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.String {
			s := "x"
			v.Set(reflect.ValueOf(&s))
		}
	case reflect.Slice:
		e := newDefault(v.Type().Elem())
		if e.Kind() == reflect.Uint8 {
			e.SetUint(1)
		}
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), e))
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.Type() != tagsType && f.CanSet() {
				probeField(f)
				return
			}
		}
	}
}

func setInt(v reflect.Value, n int64) {
	switch v.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(n)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n))
	}
}

// newDefault returns a settable value of type t at kmsg's defaults.
func newDefault(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if d, ok := p.Interface().(interface{ Default() }); ok {
		d.Default()
	}
	return p.Elem()
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// tagInsertion reports whether changed is base with one tagged field
// added to the (empty) tag section at d, and returns the tag's key and
// content size.
func tagInsertion(base, changed []byte, d int) (key uint32, size int, ok bool) {
	if len(changed) <= len(base) || d >= len(base) || base[d] != 0 || changed[d] != 1 {
		return 0, 0, false
	}
	tail := len(base) - d - 1
	if !bytes.Equal(changed[len(changed)-tail:], base[d+1:]) {
		return 0, 0, false
	}
	entry := changed[d+1 : len(changed)-tail]
	key, n := guardUvarint(entry)
	if n <= 0 {
		return 0, 0, false
	}
	sz, m := guardUvarint(entry[n:])
	if m <= 0 || int(sz) != len(entry)-n-m {
		return 0, 0, false
	}
	return key, int(sz), true
}

// fixedLen is the encoded size of a struct of fixed-width fields.
func (st *guardStruct) fixedLen() int {
	n := 0
	for _, f := range st.fields {
		n += f.size
	}
	return n
}
