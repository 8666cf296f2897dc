package runtime

import "testing"

func TestDemangle(t *testing.T) {
	for in, want := range map[string]string{
		"_ZN5probe10probe_trap17h92216b892dd39a0fE":                                          "probe::probe_trap",
		"_ZN4core9panicking5panic17h0123456789abcdefE":                                       "core::panicking::panic",
		"_ZN53_$LT$std..io..Error$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE": "<std::io::Error as core::fmt::Display>::fmt",
		"abort":      "abort",
		"_ZN3bad99E": "_ZN3bad99E",
	} {
		if got := demangle(in); got != want {
			t.Errorf("demangle(%q) = %q, want %q", in, got, want)
		}
	}
}
