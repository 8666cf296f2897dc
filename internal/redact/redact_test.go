package redact

import (
	"encoding/json"
	"testing"
)

func TestRedact(t *testing.T) {
	r := New("s3cr3t", `we"ird\pw`, "", "s3cr3t-longer")
	if got := r.String("token s3cr3t and s3cr3t-longer"); got != "token [redacted] and [redacted]" {
		t.Fatalf("String = %q", got)
	}
	out := r.JSON(json.RawMessage(`{"a":"x s3cr3t","b":"we\"ird\\pw","c":[1,"s3cr3t"]}`))
	if string(out) != `{"a":"x [redacted]","b":"[redacted]","c":[1,"[redacted]"]}` {
		t.Fatalf("JSON = %s", out)
	}
	f := r.Fields(map[string]any{"k": "s3cr3t", "n": 1, "nested": map[string]any{"v": []any{"s3cr3t"}}})
	b, _ := json.Marshal(f)
	if string(b) != `{"k":"[redacted]","n":1,"nested":{"v":["[redacted]"]}}` {
		t.Fatalf("Fields = %s", b)
	}
	var none *Redactor
	if none.String("s3cr3t") != "s3cr3t" || New().Active() {
		t.Fatal("an empty redactor must change nothing")
	}
}

func TestCutTail(t *testing.T) {
	r := New("s3cr3t-longer", "xyz")
	for in, want := range map[string]string{
		"token s3cr3t-lo":        "token [redacted]",
		"token s3cr3t-longer ok": "token [redacted] ok",
		"ends in x":              "ends in [redacted]",
		"ends in xy":             "ends in [redacted]",
		"nothing here":           "nothing here",
		"a whole xyz":            "a whole [redacted]",
	} {
		if got := r.CutTail(in); got != want {
			t.Errorf("CutTail(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (&Redactor{}).CutTail("s3cr"); got != "s3cr" {
		t.Errorf("the zero Redactor changed %q", got)
	}
}
