package mutation

import "testing"

func TestParseRoundTripsEveryKind(t *testing.T) {
	for _, k := range append(All(), None) {
		got, err := Parse(k.String())
		if err != nil || got != k {
			t.Errorf("Parse(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := Parse("nope"); err == nil {
		t.Error("an unknown name parsed")
	}
}

func TestSetAndOn(t *testing.T) {
	prev := Set(SkipTruncation)
	defer Set(prev)
	if !On(SkipTruncation) || On(HWBeforeISR) || On(None) {
		t.Fatal("On does not follow Set")
	}
}
