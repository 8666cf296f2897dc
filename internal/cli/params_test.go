package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseParamsKeepsTimestampTextAtEveryDepth(t *testing.T) {
	got, err := parseParams([]string{
		"day=2026-11-28",
		"days=[2026-11-28, 2026-11-29T10:00:00Z]",
		"window={from: 2026-11-01, to: {day: 2026-11-30 12:00:00}, n: 3}",
		"code='007'",
		"when='2026-11-28'",
		"empty=",
		"nested=[[2026-01-02], {x: [true, 1.5, null]}]",
		"merged={base: &b {a: 1, d: 2026-01-01}, top: {<<: *b, a: 2}}",
		"num_keys={1: one, true: yes}",
	})
	require.NoError(t, err)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"day": "2026-11-28",
		"days": ["2026-11-28", "2026-11-29T10:00:00Z"],
		"window": {"from": "2026-11-01", "to": {"day": "2026-11-30 12:00:00"}, "n": 3},
		"code": "007",
		"when": "2026-11-28",
		"empty": null,
		"nested": [["2026-01-02"], {"x": [true, 1.5, null]}],
		"merged": {"base": {"a": 1, "d": "2026-01-01"}, "top": {"a": 2, "d": "2026-01-01"}},
		"num_keys": {"1": "one", "true": "yes"}
	}`, string(b))

	_, err = parseParams([]string{"bad={[1]: x}"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--param bad: a mapping key must be plain text, not a list")
	_, err = parseParams([]string{"bad=[1, .inf]"})
	require.Error(t, err)
	assert.Equal(t, "--param bad: .inf is not a finite number, which JSON can't hold; quote it to pass it as text", err.Error())
	_, err = parseParams([]string{"bad=[unclosed"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--param bad: the value is not valid YAML")
}
