package tine

import (
	"strings"
	"unicode/utf8"
)

// TINE's fixed-length name and text fields are byte strings, and tine.jar
// turns them into Java strings one byte per character: UTF-8 "Å" would
// show as "Ã\u0085", and a field cut at its length could end in half a
// character. So the texts this server writes about its properties
// (descriptions, units, the status text of error replies) are spelled in
// ASCII: the symbols the registry uses become their usual ASCII spelling
// (Å -> A, σ -> sigma, µ -> u, ° -> deg, ² -> ^2, ...) and any other
// non-ASCII character becomes '?'. Property values of type text (file
// paths, status strings) are sent as their UTF-8 bytes, unchanged, and cut
// only on a character boundary.

var symbolsASCII = strings.NewReplacer("Å", "A", "°", "deg", "µ", "u", "μ", "u", "²", "^2", "³", "^3", "σ", "sigma",
	"Ω", "Ohm", "×", "x", "±", "+/-", "–", "-", "—", "-", "’", "'", "·", ".", "≥", ">=", "≤", "<=")

// asciiText spells s in ASCII as described above.
func asciiText(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	s = symbolsASCII.Replace(s)
	var b strings.Builder
	for _, r := range s {
		if r >= utf8.RuneSelf {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cutText cuts s to at most n bytes without splitting a UTF-8 character.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
