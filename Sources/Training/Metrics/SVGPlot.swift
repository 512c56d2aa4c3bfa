import Foundation
import Formats

/// A dependency-free SVG line chart: several series, optional shaded bands (mean ± std), light
/// grid on nice ticks, axis labels, a legend, linear or logarithmic y. The output is plain SVG 1.1
/// (no scripts, no external fonts) and deterministic, so it diffs well and opens in any browser.
///
///     var plot = SVGPlot(title: "Loss", xLabel: "step", yLabel: "loss")
///     plot.series.append(.init(name: "train", points: zip(steps, losses).map { .init(x: $0, y: $1) }))
///     try plot.write(to: url)
///
/// Non-finite points (and, on a log axis, points ≤ 0) are skipped and break the line there. The
/// axes cover all data; drawing is clipped 8 px outside the plot area, so markers on its edge
/// show whole.
public struct SVGPlot: Sendable {
    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(x: Double, y: Double) { self.x = x; self.y = y }
    }

    /// One x with the band's lower and upper y.
    public struct BandPoint: Sendable, Equatable {
        public var x: Double
        public var lower: Double
        public var upper: Double
        public init(x: Double, lower: Double, upper: Double) { self.x = x; self.lower = lower; self.upper = upper }
    }

    public struct Series: Sendable {
        public var name: String
        public var points: [Point]
        /// A shaded region drawn under the line (empty: none).
        public var band: [BandPoint]
        /// Any SVG colour; nil takes `SVGPlot.palette[index of the series]`.
        public var color: String?
        public var lineWidth: Double
        public var opacity: Double
        public var dashed: Bool
        public var markers: Bool
        public var inLegend: Bool

        public init(name: String, points: [Point], band: [BandPoint] = [], color: String? = nil, lineWidth: Double = 2,
                    opacity: Double = 1, dashed: Bool = false, markers: Bool = false, inLegend: Bool = true) {
            self.name = name
            self.points = points
            self.band = band
            self.color = color
            self.lineWidth = lineWidth
            self.opacity = opacity
            self.dashed = dashed
            self.markers = markers
            self.inLegend = inLegend
        }
    }

    /// Okabe & Ito's colour-blind-safe palette (blue, vermillion, bluish green, orange, reddish
    /// purple, sky blue, black); the yellow is left out, as it is unreadable on white.
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000"]

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logY: Bool
    public var width: Double
    public var height: Double
    public var series: [Series]

    public init(title: String = "", xLabel: String = "", yLabel: String = "", logY: Bool = false,
                width: Double = 860, height: Double = 500, series: [Series] = []) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logY = logY
        self.width = width
        self.height = height
        self.series = series
    }

    /// Writes `render()` to `url` atomically (temporary file, fsync, rename).
    public func write(to url: URL) throws(MetricsError) {
        do { try AtomicFile.write(Data(render().utf8), to: url) } catch {
            if case let .io(_, _, code) = error { throw .io(path: url.path, operation: "write the plot", errno: code) }
            throw .io(path: url.path, operation: "write the plot", errno: EIO)
        }
    }

    // MARK: Rendering

    /// The SVG document.
    public func render() -> String {
        let left = 78.0, right = 28.0, top = title.isEmpty ? 24.0 : 52.0, bottom = xLabel.isEmpty ? 44.0 : 64.0
        let plotWidth = Swift.max(width - left - right, 10), plotHeight = Swift.max(height - top - bottom, 10)

        // Ranges over everything drawn.
        var xs: [Double] = [], ys: [Double] = []
        for s in series {
            for p in s.points where usable(p.x, p.y) { xs.append(p.x); ys.append(p.y) }
            for b in s.band where b.x.isFinite {
                if usable(b.x, b.lower) { xs.append(b.x); ys.append(b.lower) }
                if usable(b.x, b.upper) { xs.append(b.x); ys.append(b.upper) }
            }
        }
        let hasData = !xs.isEmpty
        let xScale = AxisScale.linear(min: xs.min() ?? 0, max: xs.max() ?? 1, targetTicks: Swift.max(4, Int(plotWidth / 90)))
        let yScale = logY
            ? AxisScale.logarithmic(min: ys.min() ?? 1, max: ys.max() ?? 10)
            : AxisScale.linear(min: ys.min() ?? 0, max: ys.max() ?? 1, targetTicks: Swift.max(4, Int(plotHeight / 70)))
        func transform(_ y: Double) -> Double { logY ? log10(y) : y }
        let (y0, y1) = (transform(yScale.lower), transform(yScale.upper))
        func sx(_ x: Double) -> Double { left + (x - xScale.lower) / (xScale.upper - xScale.lower) * plotWidth }
        func sy(_ y: Double) -> Double { top + plotHeight - (transform(y) - y0) / (y1 - y0) * plotHeight }

        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" viewBox="0 0 \(n(width)) \(n(height))" \
        font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif" font-size="13">
        <rect width="\(n(width))" height="\(n(height))" fill="#ffffff"/>
        <defs><clipPath id="plot-area"><rect x="\(n(left - 8))" y="\(n(top - 8))" width="\(n(plotWidth + 16))" height="\(n(plotHeight + 16))"/></clipPath></defs>

        """
        if !title.isEmpty {
            svg += "<text x=\"\(n(left + plotWidth / 2))\" y=\"32\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"600\" fill=\"#222222\">\(svgEscaped(title))</text>\n"
        }

        // Grid and ticks.
        svg += "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n"
        for t in xScale.ticks { svg += "<line x1=\"\(n(sx(t)))\" y1=\"\(n(top))\" x2=\"\(n(sx(t)))\" y2=\"\(n(top + plotHeight))\"/>\n" }
        for t in yScale.ticks { svg += "<line x1=\"\(n(left))\" y1=\"\(n(sy(t)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(sy(t)))\"/>\n" }
        svg += "</g>\n<g fill=\"#444444\" font-size=\"12\">\n"
        for t in xScale.ticks {
            svg += "<text x=\"\(n(sx(t)))\" y=\"\(n(top + plotHeight + 19))\" text-anchor=\"middle\">\(svgEscaped(xScale.label(t)))</text>\n"
        }
        for t in yScale.ticks {
            svg += "<text x=\"\(n(left - 8))\" y=\"\(n(sy(t) + 4))\" text-anchor=\"end\">\(svgEscaped(yScale.label(t)))</text>\n"
        }
        svg += "</g>\n"
        svg += "<path d=\"M\(n(left)),\(n(top))V\(n(top + plotHeight))H\(n(left + plotWidth))\" fill=\"none\" stroke=\"#555555\" stroke-width=\"1\"/>\n"
        if !xLabel.isEmpty {
            svg += "<text x=\"\(n(left + plotWidth / 2))\" y=\"\(n(height - 18))\" text-anchor=\"middle\" font-size=\"14\" fill=\"#222222\">\(svgEscaped(xLabel))</text>\n"
        }
        if !yLabel.isEmpty {
            let cx = 20.0, cy = top + plotHeight / 2
            svg += "<text x=\"\(n(cx))\" y=\"\(n(cy))\" transform=\"rotate(-90 \(n(cx)) \(n(cy)))\" text-anchor=\"middle\" font-size=\"14\" fill=\"#222222\">\(svgEscaped(yLabel))</text>\n"
        }

        // Data.
        svg += "<g clip-path=\"url(#plot-area)\">\n"
        for (index, s) in series.enumerated() {
            let color = svgEscaped(s.color ?? Self.palette[index % Self.palette.count])
            if let band = bandPath(s.band, sx: sx, sy: sy) {
                svg += "<path d=\"\(band)\" fill=\"\(color)\" fill-opacity=\"\(n(0.18 * s.opacity))\" stroke=\"none\"><title>\(svgEscaped(s.name)) band</title></path>\n"
            }
            if let line = linePath(s.points, sx: sx, sy: sy) {
                let dash = s.dashed ? " stroke-dasharray=\"\(n(3 * s.lineWidth)),\(n(2 * s.lineWidth))\"" : ""
                svg += "<path d=\"\(line)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(n(s.lineWidth))\" stroke-opacity=\"\(n(s.opacity))\" "
                    + "stroke-linejoin=\"round\" stroke-linecap=\"round\"\(dash)><title>\(svgEscaped(s.name))</title></path>\n"
            }
            if s.markers {
                svg += "<g fill=\"\(color)\" fill-opacity=\"\(n(s.opacity))\" stroke=\"#ffffff\" stroke-width=\"1\">"
                for p in s.points where usable(p.x, p.y) {
                    svg += "<circle cx=\"\(n(sx(p.x)))\" cy=\"\(n(sy(p.y)))\" r=\"\(n(1.5 + s.lineWidth))\"/>"
                }
                svg += "</g>\n"
            }
        }
        svg += "</g>\n"
        if !hasData {
            svg += "<text x=\"\(n(left + plotWidth / 2))\" y=\"\(n(top + plotHeight / 2))\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n"
        }
        svg += legend(left: left, top: top, plotWidth: plotWidth)
        svg += "</svg>\n"
        return svg
    }

    /// A boxed legend in the top-right corner of the plot area.
    private func legend(left: Double, top: Double, plotWidth: Double) -> String {
        let entries = series.enumerated().filter { $0.element.inLegend }
        guard !entries.isEmpty else { return "" }
        let rowHeight = 20.0, swatch = 26.0
        let textWidth = entries.map { Double($0.element.name.count) * 7.2 }.max() ?? 0
        let boxWidth = swatch + 18 + textWidth, boxHeight = Double(entries.count) * rowHeight + 10
        let x = left + plotWidth - boxWidth - 10, y = top + 10
        var out = "<g class=\"legend\" font-size=\"12.5\">\n"
        out += "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(boxWidth))\" height=\"\(n(boxHeight))\" rx=\"4\" fill=\"#ffffff\" fill-opacity=\"0.88\" stroke=\"#cccccc\"/>\n"
        for (row, entry) in entries.enumerated() {
            let s = entry.element
            let color = svgEscaped(s.color ?? Self.palette[entry.offset % Self.palette.count])
            let cy = y + 5 + rowHeight * (Double(row) + 0.5)
            let x0 = x + 8, x1 = x + 8 + swatch
            if !s.band.isEmpty {
                out += "<rect x=\"\(n(x0))\" y=\"\(n(cy - 6))\" width=\"\(n(swatch))\" height=\"12\" fill=\"\(color)\" fill-opacity=\"\(n(0.18 * s.opacity))\"/>"
            }
            let dash = s.dashed ? " stroke-dasharray=\"\(n(3 * s.lineWidth)),\(n(2 * s.lineWidth))\"" : ""
            out += "<line x1=\"\(n(x0))\" y1=\"\(n(cy))\" x2=\"\(n(x1))\" y2=\"\(n(cy))\" stroke=\"\(color)\" "
                + "stroke-width=\"\(n(Swift.max(s.lineWidth, 1.5)))\" stroke-opacity=\"\(n(Swift.max(s.opacity, 0.6)))\"\(dash)/>"
            if s.markers {
                out += "<circle cx=\"\(n((x0 + x1) / 2))\" cy=\"\(n(cy))\" r=\"\(n(1.5 + s.lineWidth))\" fill=\"\(color)\" stroke=\"#ffffff\"/>"
            }
            out += "<text x=\"\(n(x1 + 8))\" y=\"\(n(cy + 4.5))\" fill=\"#222222\">\(svgEscaped(s.name))</text>\n"
        }
        return out + "</g>\n"
    }

    private func usable(_ x: Double, _ y: Double) -> Bool {
        x.isFinite && y.isFinite && (!logY || y > 0)
    }

    /// "M x,y L x,y …", starting a new subpath after each unusable point; nil if nothing to draw.
    private func linePath(_ points: [Point], sx: (Double) -> Double, sy: (Double) -> Double) -> String? {
        var d = "", pen = false
        for p in points {
            guard usable(p.x, p.y) else { pen = false; continue }
            d += (pen ? "L" : "M") + n(sx(p.x)) + "," + n(sy(p.y))
            pen = true
        }
        return d.isEmpty ? nil : d
    }

    /// Closed polygons (upper edge forward, lower edge back) over each run of usable band points.
    private func bandPath(_ band: [BandPoint], sx: (Double) -> Double, sy: (Double) -> Double) -> String? {
        var d = "", run: [BandPoint] = []
        func flush() {
            if run.count >= 2 {
                d += "M" + run.map { n(sx($0.x)) + "," + n(sy($0.upper)) }.joined(separator: "L")
                d += "L" + run.reversed().map { n(sx($0.x)) + "," + n(sy($0.lower)) }.joined(separator: "L") + "Z"
            }
            run.removeAll()
        }
        for b in band {
            if usable(b.x, b.lower), usable(b.x, b.upper) { run.append(b) } else { flush() }
        }
        flush()
        return d.isEmpty ? nil : d
    }
}

/// A coordinate with at most two decimals, no trailing zeros, no exponent.
private func n(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    let rounded = (value * 100).rounded() / 100
    if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int(rounded)) }
    var text = AxisScale.fixed(rounded, decimals: 2)
    while text.hasSuffix("0") { text.removeLast() }
    return text
}

/// Text escaped for SVG element content and attribute values; control characters, which XML 1.0
/// cannot hold, become spaces.
private func svgEscaped(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default:
            if let scalar = c.unicodeScalars.first, c.unicodeScalars.count == 1, scalar.value < 0x20 || scalar.value == 0x7F {
                out += " "
            } else {
                out.append(c)
            }
        }
    }
    return out
}
