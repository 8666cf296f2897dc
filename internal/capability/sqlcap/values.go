package sqlcap

import (
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// bindParams turns a task's parameters, JSON values, into what the drivers
// bind:
//
//   - nil, bool, string: as they are;
//   - a number (float64, json.Number, a Go integer): int64 when it is a whole
//     number that fits, float64 otherwise; a whole json.Number too large for
//     int64 is bound as its decimal text, so a numeric column keeps it exact;
//   - {"base64": "..."}, the form Query gives bytes that are not text: the
//     decoded bytes (a BLOB, a bytea);
//   - any other array or object: its JSON text (for a json column, or
//     SQLite's JSON functions);
//   - []byte and time.Time, from a Go caller: as they are.
func bindParams(params []any) ([]any, error) {
	if len(params) == 0 {
		return nil, nil
	}
	args := make([]any, len(params))
	for i, p := range params {
		a, err := bindParam(p)
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		args[i] = a
	}
	return args, nil
}

func bindParam(p any) (any, error) {
	switch v := p.(type) {
	case nil, bool, string, int64, []byte, time.Time:
		return v, nil
	case float64:
		return bindFloat(v), nil
	case float32:
		return bindFloat(float64(v)), nil
	case int:
		return int64(v), nil
	case int8:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case uint8:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint:
		return bindUint(uint64(v)), nil
	case uint64:
		return bindUint(v), nil
	case json.Number:
		s := v.String()
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		if isDigits(strings.TrimPrefix(s, "-")) {
			return s, nil // a whole number past int64
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return bindFloat(f), nil
	case map[string]any:
		if b64, ok := v["base64"].(string); ok && len(v) == 1 {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("the base64 bytes do not decode: %v", err)
			}
			return b, nil
		}
		return jsonText(v)
	case map[string]string:
		if b64, ok := v["base64"]; ok && len(v) == 1 {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("the base64 bytes do not decode: %v", err)
			}
			return b, nil
		}
		return jsonText(v)
	case []any, json.RawMessage:
		return jsonText(v)
	default:
		return nil, fmt.Errorf("cannot bind a value of Go type %T", p)
	}
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cannot bind the value as JSON text: %v", err)
	}
	return string(b), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// bindFloat binds a whole number as int64, so that 3 (a JSON number, hence a
// float64) is the integer 3 to the database, not 3.0.
func bindFloat(f float64) any {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return f
}

func bindUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return strconv.FormatUint(u, 10)
}

// jsonValue turns a value read by a driver into a JSON-compatible one; dbType
// is the column's declared type, upper case, as the driver reports it.
//
//   - integers: int64, except a SQLite column declared BOOLEAN (or BOOL) whose
//     value is 0 or 1, read as false or true;
//   - floats: float64, except NaN and the infinities (which JSON lacks):
//     "NaN", "Infinity", "-Infinity";
//   - text and bytes: a string when they are valid UTF-8, else
//     {"base64": "..."} (standard encoding, padded);
//   - times: RFC 3339 strings in UTC with as many fractional digits as
//     needed; a DATE column's midnight is just the date, "2024-01-31";
//   - PostgreSQL's numeric, and every type the driver reads as text (uuid,
//     interval, arrays, ...): their text, so no precision is lost; json and
//     jsonb: their JSON text.
func jsonValue(v any, dbType string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		if (dbType == "BOOLEAN" || dbType == "BOOL") && (x == 0 || x == 1) {
			return x == 1
		}
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint32:
		return int64(x)
	case uint16:
		return int64(x)
	case uint8:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return strconv.FormatUint(x, 10)
	case float64:
		return jsonFloat(x)
	case float32:
		return jsonFloat(float64(x))
	case bool:
		return x
	case string:
		if utf8.ValidString(x) {
			return x
		}
		return map[string]string{"base64": base64.StdEncoding.EncodeToString([]byte(x))}
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return map[string]string{"base64": base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		t := x.UTC()
		if dbType == "DATE" && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
			return t.Format(time.DateOnly)
		}
		return t.Format(time.RFC3339Nano)
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return fmt.Sprint(x)
		}
		if _, again := dv.(driver.Valuer); again {
			return fmt.Sprint(dv)
		}
		return jsonValue(dv, dbType)
	case fmt.Stringer:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// jsonSize is about the size of v's JSON encoding, as jsonValue made it.
func jsonSize(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 4
	case bool:
		if x {
			return 4
		}
		return 5
	case int64:
		return int64(len(strconv.AppendInt(make([]byte, 0, 20), x, 10)))
	case float64:
		// As encoding/json writes it: plain decimals from 1e-6 to 1e21.
		format := byte('f')
		if abs := math.Abs(x); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			format = 'e'
		}
		return int64(len(strconv.AppendFloat(make([]byte, 0, 32), x, format, -1, 64)))
	case string:
		return jsonStringSize(x)
	case map[string]string:
		n := int64(2)
		for k, s := range x {
			n += jsonStringSize(k) + 1 + jsonStringSize(s)
		}
		return n
	default:
		return jsonStringSize(fmt.Sprint(x))
	}
}

// jsonStringSize is the size of s as encoding/json writes it: its bytes and
// quotes, plus the escapes of quotes, backslashes, control characters, <, >
// and &, and of U+2028 and U+2029.
func jsonStringSize(s string) int64 {
	n := int64(len(s)) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 5
		case c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9):
			n += 3 // 3 bytes written as \u2028
		}
	}
	return n
}

// formatBytes writes a size for a person: 64 MiB, 1.5 KiB, 100 bytes.
func formatBytes(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	u := 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	switch {
	case u == 0:
		return fmt.Sprintf("%d bytes", n)
	case f == math.Trunc(f):
		return fmt.Sprintf("%.0f %s", f, units[u])
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}
