package project

import (
	"fmt"
	"sort"
	"strings"
)

// Error is a problem in a project file. Every error that Load, LoadWorkflow
// and LoadTaskConfig return is an *Error or an Errors (a list of *Error), so
// callers can recognise invalid projects with errors.As(err, new(*Error)).
type Error struct {
	Pos Pos    // where the problem is; Line is 0 when unknown, File is "" when no file is involved
	Msg string // one sentence: what is wrong and what to do
}

// Error formats the error as FILE:LINE:COL: MSG (or FILE: MSG, or MSG
// when the position is not known).
func (e *Error) Error() string {
	if e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// String formats the position as FILE:LINE:COL, FILE:LINE or FILE,
// depending on what is known.
func (p Pos) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.Column <= 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
}

// Errors is a list of independent problems, sorted by position.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As and errors.Is see every *Error in the list.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// collector gathers the errors found while loading one file (and the files
// it refers to).
type collector struct {
	primary string // display path of the file being loaded; its errors sort first
	errs    []*Error
	seen    map[string]bool
}

func newCollector(primary string) *collector {
	return &collector{primary: primary, seen: map[string]bool{}}
}

func (c *collector) add(e *Error) {
	key := e.Error()
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.errs = append(c.errs, e)
}

func (c *collector) addf(pos Pos, format string, args ...any) {
	c.add(&Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// addErr adds an error returned by another loader, flattening Errors.
func (c *collector) addErr(err error) {
	switch e := err.(type) {
	case nil:
	case *Error:
		c.add(e)
	case Errors:
		for _, x := range e {
			c.add(x)
		}
	default:
		c.add(&Error{Msg: err.Error()})
	}
}

func (c *collector) empty() bool { return len(c.errs) == 0 }

// err returns nil, a single *Error, or Errors sorted by position (errors in
// the primary file first, then other files by name).
func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	sort.SliceStable(c.errs, func(i, j int) bool {
		a, b := c.errs[i].Pos, c.errs[j].Pos
		if (a.File == c.primary) != (b.File == c.primary) {
			return a.File == c.primary
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	if len(c.errs) == 1 {
		return c.errs[0]
	}
	return Errors(c.errs)
}

// suggest returns the candidate closest to s, ignoring case, when it is
// within edit distance 2 (and the edit does not replace most of s) or when
// one is a prefix of the other (e.g. "depends" for "depends_on"); else "".
func suggest(s string, candidates []string) string {
	ls := strings.ToLower(s)
	best, bestD := "", 3
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := editDistance(ls, lc)
		if d > 2 && len(ls) >= 3 && len(lc) >= 3 && (strings.HasPrefix(lc, ls) || strings.HasPrefix(ls, lc)) {
			d = 2
		}
		if d < bestD && d < len(c) && d < len(s) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counted in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// suggestSep returns `; did you mean "x"? ` when a candidate is close to
// s, else "; ", to join a problem with a list of valid values.
func suggestSep(s string, candidates []string) string {
	if m := suggest(s, candidates); m != "" {
		return fmt.Sprintf("; did you mean %q? ", m)
	}
	return "; "
}
