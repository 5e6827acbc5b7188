package wire

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// flexibleVersions lists every registered API key with each flexible
// version it is registered for.
func flexibleVersions(t *testing.T) map[int16][]int16 {
	t.Helper()
	out := map[int16][]int16{}
	for key, a := range apis {
		for v := a.minVersion; v <= a.maxVersion; v++ {
			r := kmsg.RequestForKey(key)
			if r == nil {
				t.Fatalf("registered key %d unknown to kmsg", key)
			}
			r.SetVersion(v)
			if r.IsFlexible() {
				out[key] = append(out[key], v)
			}
		}
	}
	return out
}

// populate fills every field of v with non-default values: two elements
// per array, and an unknown tag on every struct, so that an encoding
// exercises every part of the layout.
func populate(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.String:
		v.SetString("ab")
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.String {
			s := "cd"
			v.Set(reflect.ValueOf(&s))
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			populate(v.Index(i), depth)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{1, 2, 3})
			return
		}
		if depth > 4 {
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			e := newDefault(v.Type().Elem())
			populate(e, depth+1)
			s.Index(i).Set(e)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == tagsType {
			tags := kmsg.Tags{}
			tags.Set(99, []byte{5, 6})
			v.Set(reflect.ValueOf(tags))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() && v.Type().Field(i).Name != "Version" {
				populate(f, depth)
			}
		}
	}
}

func populatedRequest(key, version int16) kmsg.Request {
	r := kmsg.RequestForKey(key)
	populate(reflect.ValueOf(r).Elem(), 0)
	r.SetVersion(version)
	return r
}

// TestTagGuardLayouts checks the derived layout of every registered API at
// every flexible version against kmsg: a fully populated request encoded
// by kmsg is walked to its last byte.
func TestTagGuardLayouts(t *testing.T) {
	for key, versions := range flexibleVersions(t) {
		for _, v := range versions {
			st, err, _ := requestGuard(key, v)
			if err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			}
			body := populatedRequest(key, v).AppendTo(nil)
			check := kmsg.RequestForKey(key)
			check.SetVersion(v)
			if err := check.ReadFrom(body); err != nil {
				t.Fatalf("%s v%d: kmsg cannot read its own encoding: %v", kmsg.NameForKey(key), v, err)
			}
			rest, r := st.walk(body)
			if r != walkOK || len(rest) != 0 {
				t.Errorf("%s v%d: walk ended with %d, %d of %d bytes left", kmsg.NameForKey(key), v, r, len(rest), len(body))
			}
		}
	}
}

// TestTagGuardBombs appends a tag count of 2^32-1 after every prefix of
// every populated request: whatever the guard lets through must decode
// quickly.
func TestTagGuardBombs(t *testing.T) {
	bomb := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	var rejected, passed int
	for key, versions := range flexibleVersions(t) {
		for _, v := range versions {
			st, err, _ := requestGuard(key, v)
			if err != nil {
				t.Fatal(err)
			}
			body := populatedRequest(key, v).AppendTo(nil)
			for p := 0; p <= len(body); p++ {
				in := append(append([]byte(nil), body[:p]...), bomb...)
				if !guardBody(st, in) {
					rejected++
					continue
				}
				passed++
				done := make(chan struct{})
				go func() {
					r := kmsg.RequestForKey(key)
					r.SetVersion(v)
					r.ReadFrom(in)
					close(done)
				}()
				select {
				case <-done:
				case <-time.After(2 * time.Second):
					t.Fatalf("%s v%d: guard passed a body kmsg spins on: % x", kmsg.NameForKey(key), v, in)
				}
			}
		}
	}
	t.Logf("bombs rejected %d, passed (and decoded quickly) %d", rejected, passed)
	if rejected == 0 || passed == 0 {
		t.Fatalf("rejected %d, passed %d: the test exercises nothing", rejected, passed)
	}
}

// TestTagGuardOverTCP: the 8-byte body that costs kmsg minutes closes the
// connection at once.
func TestTagGuardOverTCP(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	// Metadata v12 header (key 3, version 12, correlation id 1, null
	// client id, no header tags), then: no topics, two false booleans, and
	// a tag count of 2^32-1.
	frame := []byte{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0}
	frame = append(frame, 0x01, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f)
	start := time.Now()
	c.write(sizePrefixed(frame))
	c.expectClosed()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v to reject", d)
	}
	env.dial().roundTrip(kmsg.NewPtrApiVersionsRequest())
}

func TestGuardUvarint(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		v    uint32
		n    int
		fail bool
	}{
		{[]byte{0}, 0, 1, false},
		{[]byte{0x7f}, 127, 1, false},
		{[]byte{0x80, 0x01}, 128, 2, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 1<<32 - 1, 5, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x10}, 0, 0, true},
		{[]byte{0x80}, 0, 0, true},
		{nil, 0, 0, true},
	} {
		v, n := guardUvarint(tc.in)
		if tc.fail != (n <= 0) || (!tc.fail && (v != tc.v || n != tc.n)) {
			t.Errorf("% x: %d, %d", tc.in, v, n)
		}
	}
}
