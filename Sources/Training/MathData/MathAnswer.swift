/// The final numeric answer of a GSM8K-style solution, for exact-match grading.
///
/// `extract` takes the number after the last `####` (GSM8K's final-answer marker; the last, as
/// PiSSA's `test_acc.py` takes its last "The answer is:"), else the last number anywhere in the
/// text. Numbers are normalised so that equal values compare equal as strings: thousands commas
/// and a leading `+` or `$` go, trailing fractional zeros go ("12.50" → "12.5", "7.0" → "7"),
/// leading zeros go, "-0" is "0", ".5" is "0.5". A period not followed by a digit ends the number
/// ("is 42." → "42").
public enum MathAnswer {
    /// The normalised final answer, or nil when the text has no number.
    public static func extract(from text: String) -> String? {
        let scalars = Array(text.unicodeScalars)
        if let marker = lastMarker(in: scalars) {
            var i = marker + 4
            while i < scalars.count, scalars[i] == " " || scalars[i] == "\t" || scalars[i] == "$" { i += 1 }
            if let number = number(in: scalars, at: i) { return number.text }
        }
        var last: String?
        var i = 0
        while i < scalars.count {
            // A "-" right after a letter or digit is a hyphen or a minus ("3-4"), not a sign.
            let afterWord = i > 0 && (isDigit(scalars[i - 1]) || scalars[i - 1].properties.isAlphabetic)
            if !(afterWord && scalars[i] == "-"), let number = number(in: scalars, at: i) {
                last = number.text
                i = number.end
            } else {
                i += 1
            }
        }
        return last
    }

    /// `text` normalised if it is exactly one number (surrounding spaces allowed), else nil.
    public static func normalize(_ text: String) -> String? {
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count, scalars[i] == " " || scalars[i] == "$" { i += 1 }
        guard let number = number(in: scalars, at: i) else { return nil }
        guard scalars[number.end...].allSatisfy({ $0 == " " || $0 == "\n" }) else { return nil }
        return number.text
    }

    /// Whether a generated solution's answer equals the reference answer.
    public static func isCorrect(generated: String, reference: String) -> Bool {
        guard let a = extract(from: generated), let b = normalize(reference) ?? extract(from: reference) else { return false }
        return a == b
    }

    private static func lastMarker(in s: [Unicode.Scalar]) -> Int? {
        guard s.count >= 4 else { return nil }
        var i = s.count - 4
        while i >= 0 {
            if s[i] == "#" && s[i + 1] == "#" && s[i + 2] == "#" && s[i + 3] == "#" { return i }
            i -= 1
        }
        return nil
    }

    private static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }

    /// The number starting at `start` (sign, digits with commas, fraction), normalised, and the
    /// index after it. Nil when no digit is there.
    private static func number(in s: [Unicode.Scalar], at start: Int) -> (text: String, end: Int)? {
        var i = start
        var negative = false
        if i < s.count, s[i] == "-" || s[i] == "+" || s[i] == "\u{2212}" {
            negative = s[i] != "+"
            i += 1
        }
        var integer = ""
        while i < s.count {
            if isDigit(s[i]) {
                integer.unicodeScalars.append(s[i])
                i += 1
            } else if s[i] == ",", !integer.isEmpty, i + 3 < s.count,
                      isDigit(s[i + 1]), isDigit(s[i + 2]), isDigit(s[i + 3]),
                      i + 4 == s.count || !isDigit(s[i + 4]) {
                i += 1   // a thousands separator: exactly three digits follow
            } else {
                break
            }
        }
        var fraction = ""
        if i + 1 < s.count, s[i] == ".", isDigit(s[i + 1]) {
            i += 1
            while i < s.count, isDigit(s[i]) {
                fraction.unicodeScalars.append(s[i])
                i += 1
            }
        }
        guard !integer.isEmpty || !fraction.isEmpty else { return nil }
        while integer.count > 1, integer.hasPrefix("0") { integer.removeFirst() }
        if integer.isEmpty { integer = "0" }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        var text = fraction.isEmpty ? integer : integer + "." + fraction
        if negative, text != "0" { text = "-" + text }
        return (text, i)
    }
}
