/// A Jinja template reduced to what decides its output, for recognising known templates.
enum JinjaCanonicalForm {
    /// Literal text becomes "T" + text; a tag becomes "{%" / "{{" + its content with whitespace
    /// outside string literals removed and each literal re-spelled as '…' with `\` and `'` escaped.
    /// Comments vanish; `-` whitespace control, `trim_blocks` and `lstrip_blocks` are applied.
    static func items(of source: String) -> [String] {
        var s = Array(source.unicodeScalars)
        if s.last == "\n" { s.removeLast() }   // Jinja's keep_trailing_newline = false
        var items: [String] = []
        var text = String.UnicodeScalarView()
        var i = 0
        var trimNextNewline = false
        var stripNextLeadingWhitespace = false
        var textStartsLine = true   // `text` began at the start of the source or of a line

        func flushText() {
            if !text.isEmpty { items.append("T" + String(text)) }
            text = String.UnicodeScalarView()
            textStartsLine = false
        }

        while i < s.count {
            let opensTag = s[i] == "{" && i + 1 < s.count && (s[i + 1] == "%" || s[i + 1] == "{" || s[i + 1] == "#")
            if !opensTag {
                if stripNextLeadingWhitespace && s[i].properties.isWhitespace { i += 1; continue }
                stripNextLeadingWhitespace = false
                if trimNextNewline && s[i] == "\n" { trimNextNewline = false; textStartsLine = true; i += 1; continue }
                trimNextNewline = false
                text.append(s[i])
                i += 1
                continue
            }
            let kind = s[i + 1]
            i += 2
            if i < s.count && s[i] == "-" {
                while let last = text.last, last.properties.isWhitespace { text.removeLast() }
                i += 1
            } else if kind == "%" || kind == "#" {
                // lstrip_blocks: spaces and tabs between the start of the line and the tag go.
                var k = text.endIndex
                while k > text.startIndex, text[text.index(before: k)] == " " || text[text.index(before: k)] == "\t" {
                    k = text.index(before: k)
                }
                if k == text.startIndex ? textStartsLine : text[text.index(before: k)] == "\n" {
                    text.removeSubrange(k...)
                }
            }
            flushText()
            let close: Unicode.Scalar = kind == "{" ? "}" : kind
            var content = kind == "{" ? "{{" : "{%"
            var stripAfter = false
            while i < s.count {
                let c = s[i]
                if c == "'" || c == "\"" {
                    var literal = String.UnicodeScalarView()
                    i += 1
                    while i < s.count && s[i] != c {
                        if s[i] == "\\" && i + 1 < s.count {
                            i += 1
                            switch s[i] {
                            case "n": literal.append("\n")
                            case "t": literal.append("\t")
                            case "r": literal.append("\r")
                            default: literal.append(s[i])
                            }
                        } else {
                            literal.append(s[i])
                        }
                        i += 1
                    }
                    i += 1
                    content += "'" + String(literal).replacingBackslashAndQuote() + "'"
                    continue
                }
                if c == "-" && i + 2 < s.count && s[i + 1] == close && s[i + 2] == "}" {
                    stripAfter = true
                    i += 3
                    break
                }
                if c == close && i + 1 < s.count && s[i + 1] == "}" {
                    i += 2
                    break
                }
                if !c.properties.isWhitespace { content.unicodeScalars.append(c) }
                i += 1
            }
            if kind != "#" { items.append(content) }
            stripNextLeadingWhitespace = stripAfter
            trimNextNewline = kind == "%" && !stripAfter
        }
        flushText()
        return items
    }

    /// Undoes the escaping of a canonical literal's contents.
    static func unescape(_ s: Substring) -> String {
        var out = ""
        var escaped = false
        for c in s {
            if !escaped && c == "\\" { escaped = true; continue }
            escaped = false
            out.append(c)
        }
        return out
    }
}

extension String {
    fileprivate func replacingBackslashAndQuote() -> String {
        var out = ""
        for c in self {
            if c == "\\" || c == "'" { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
