package abi

import "testing"

// A request of the wrong shape is explained in JSON's terms, not Go's.
func TestWrongShapeIsExplainedInJSONTerms(t *testing.T) {
	for _, tc := range []struct{ req, want string }{
		{`{"name":"x","value":"high","labels":{}}`, `field "value": got a JSON string, want a number`},
		{`{"name":"x","value":1,"labels":[]}`, `field "labels": got a JSON array, want an object`},
		{`{"name":"x","value":1,"labels":{"k":2}}`, `field "labels": got a JSON number, want a string`},
		{`{"name":"x","value":1,"extra":true}`, `unknown field "extra"`},
		{`[1]`, `got a JSON array, want an object`},
	} {
		var m Metric
		err := strictUnmarshal([]byte(tc.req), &m)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %s", tc.req, err, tc.want)
		}
	}
}
