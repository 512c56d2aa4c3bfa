/// JSON written by hand where byte-exact output matters (safetensors headers, tokenizer.json).
public enum JSONText {
    /// A JSON string literal escaped as serde_json (and so Python's `safetensors` and `tokenizers`)
    /// writes it: `"` and `\` escaped, short forms for \n \r \t \b \f, other controls as `\u00xx`,
    /// everything else as UTF-8.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
