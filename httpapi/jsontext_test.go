package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// jsonTextCases are strings whose JSON needs each kind of escape.
var jsonTextCases = []string{
	"", "plain", "用户名", `quote " and backslash \`, "<script>&amp;</script>",
	"\b\f\n\r\t\x00\x01\x1f\x7f", "line\u2028separator\u2029paragraph",
	"bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate", "emoji 🏦 and é",
	strings.Repeat("a", 300) + "<" + strings.Repeat("字", 100),
}

// TestAppendJSONStringIsEncodingJSONs: each string comes out as
// json.Marshal writes it, byte for byte.
func TestAppendJSONStringIsEncodingJSONs(t *testing.T) {
	for _, s := range jsonTextCases {
		checkJSONString(t, s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonTextCases {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
}

func checkJSONString(t *testing.T, s string) {
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
		t.Errorf("%q: %s, want %s", s, got[1:], want)
	}
}

// TestInfoAnswerIsEncodingJSONs: the info answer written by hand is the
// one writeOK would write through encoding/json, headers included.
func TestInfoAnswerIsEncodingJSONs(t *testing.T) {
	for _, s := range jsonTextCases {
		d := infoData{UserID: "42", Username: s, Mobile: "13900000001", Email: s + "@example.com", TotalAssets: "1.00",
			Balance: "0.50", MoneyManagement: "0.25", CardNum: s, Funds: "0.25", Gold: "0.00", GoldWeight: "0.000"}
		byHand, byReflection := httptest.NewRecorder(), httptest.NewRecorder()
		writeOKJSON(byHand, 200, append(d.appendJSON([]byte{'['}), ']'))
		writeOK(byReflection, 200, []infoData{d})
		if byHand.Body.String() != byReflection.Body.String() {
			t.Errorf("%q: by hand\n%s\nwant\n%s", s, byHand.Body, byReflection.Body)
		}
		for _, h := range []string{"Content-Type", "Content-Length"} {
			if byHand.Header().Get(h) != byReflection.Header().Get(h) {
				t.Errorf("%q: %s %q, want %q", s, h, byHand.Header().Get(h), byReflection.Header().Get(h))
			}
		}
	}
}
