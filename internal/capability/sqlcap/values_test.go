package sqlcap

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBindParams(t *testing.T) {
	args, err := bindParams([]any{nil, true, "s", 3.0, -0.5, float32(2), 7, uint64(math.MaxUint64),
		json.Number("42"), json.Number("123456789012345678901234567890"), json.Number("1.25"), json.Number("1e2"),
		map[string]any{"base64": "aGk="}, map[string]any{"a": 1.0}, []any{"x", 2.0}, []byte{1}, 1e300})
	assert.NoError(t, err)
	assert.Equal(t, []any{nil, true, "s", int64(3), -0.5, int64(2), int64(7), "18446744073709551615",
		int64(42), "123456789012345678901234567890", 1.25, int64(100),
		[]byte("hi"), `{"a":1}`, `["x",2]`, []byte{1}, 1e300}, args)

	_, err = bindParams([]any{1.0, map[string]any{"base64": "!!"}})
	assert.EqualError(t, err, "parameter 2: the base64 bytes do not decode: illegal base64 data at input byte 0")
	_, err = bindParams([]any{json.Number("x")})
	assert.EqualError(t, err, `parameter 1: "x" is not a number`)
	args, err = bindParams(nil)
	assert.NoError(t, err)
	assert.Nil(t, args)
}

func TestJSONValue(t *testing.T) {
	at := time.Date(2024, 1, 31, 10, 11, 12, 500, time.FixedZone("X", 3600))
	for _, tc := range []struct {
		v      any
		dbType string
		want   any
	}{
		{int32(5), "INT4", int64(5)},
		{int64(1), "BOOLEAN", true},
		{int64(2), "BOOLEAN", int64(2)},
		{int64(0), "BOOL", false},
		{math.NaN(), "", "NaN"},
		{math.Inf(1), "", "Infinity"},
		{float32(0.5), "", 0.5},
		{`\xff`, "", `\xff`},
		{"a\xffb", "", map[string]string{"base64": "Yf9i"}},
		{[]byte("ok"), "BLOB", "ok"},
		{at, "TIMESTAMPTZ", "2024-01-31T09:11:12.0000005Z"},
		{time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), "DATE", "2024-01-31"},
		{time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), "TIMESTAMP", "2024-01-31T00:00:00Z"},
		{uint64(math.MaxUint64), "", "18446744073709551615"},
	} {
		assert.Equal(t, tc.want, jsonValue(tc.v, tc.dbType), "%#v %s", tc.v, tc.dbType)
	}
}

// The size estimate is at least what encoding/json writes.
func TestJSONSize(t *testing.T) {
	for _, v := range []any{nil, true, false, int64(-12345), 1e20, 1e21, 1e-7, 0.1, "plain", "quote\"\\\n\x01<&>",
		"é ", map[string]string{"base64": "/wA="}} {
		b, err := json.Marshal(v)
		assert.NoError(t, err)
		assert.GreaterOrEqual(t, jsonSize(v), int64(len(b)), "%#v", v)
	}
	assert.Equal(t, "64 MiB", formatBytes(64<<20))
	assert.Equal(t, "1.5 KiB", formatBytes(1536))
	assert.Equal(t, "100 bytes", formatBytes(100))
	assert.Equal(t, "60s", formatDuration(time.Minute))
	assert.Equal(t, "1.5s", formatDuration(1500*time.Millisecond))
}
