import Foundation
import Training
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

final class MetricsPlotTests: XCTestCase {
    /// Parses `svg` with XMLParser; returns element names and all text content.
    func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> (elements: [String], text: String) {
        final class Collector: NSObject, XMLParserDelegate {
            var elements: [String] = []
            var text = ""
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) { elements.append(name) }
            func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        return (collector.elements, collector.text)
    }

    func syntheticMetrics(steps: Int) -> [StepMetrics] {
        var generator = SplitMix(seed: 7)
        var records: [StepMetrics] = []
        for step in 1...steps {
            let noise = Double(generator.next() % 1000) / 1000 - 0.5
            let loss = 0.6 + 2.4 * exp(-Double(step) / 60) + 0.15 * noise
            records.append(StepMetrics(step: step, loss: loss, learningRate: 2e-5, gradNorm: 1, tokensPerSecond: 900,
                                       elapsedSeconds: Double(step), evalLoss: step % 50 == 0 ? loss + 0.1 : nil))
        }
        return records
    }

    func testLossCurvesAreWellFormedAndComplete() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent(LossCurves.fileName)
        try LossCurves.write(metrics: syntheticMetrics(steps: 300), to: url)
        let svg = try String(contentsOf: url, encoding: .utf8)
        let (elements, text) = parse(svg)
        XCTAssertEqual(elements.first, "svg")
        XCTAssertTrue(text.contains("training loss (per step)"), text)
        XCTAssertTrue(text.contains("training loss (mean of 15 ± 1 std)"), text)
        XCTAssertTrue(text.contains("eval loss"), text)
        XCTAssertTrue(text.contains("optimizer step"))
        XCTAssertEqual(elements.filter { $0 == "circle" }.count, 6 + 1, "6 eval markers and one legend marker")
        XCTAssertTrue(svg.contains("#0072B2") && svg.contains("#D55E00"))
        XCTAssertTrue(svg.contains("fill-opacity=\"0.18\""), "the ± std band")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [LossCurves.fileName])
        // Deterministic output.
        XCTAssertEqual(LossCurves.plot(metrics: syntheticMetrics(steps: 300)).render(), svg)
    }

    func testSeriesEscapingLogAxisAndGaps() {
        var plot = SVGPlot(title: "a < b & \"c\"", xLabel: "x", yLabel: "y", logY: true)
        plot.series.append(.init(name: "one <&>", points: [.init(x: 0, y: 0.5), .init(x: 1, y: 5), .init(x: 2, y: .nan),
                                                              .init(x: 3, y: -1), .init(x: 4, y: 50)]))
        plot.series.append(.init(name: "two", points: [.init(x: 0, y: 1), .init(x: 4, y: 2)], dashed: true))
        let svg = plot.render()
        let (elements, text) = parse(svg)
        XCTAssertTrue(text.contains("a < b & \"c\""))
        XCTAssertTrue(text.contains("one <&>"))
        XCTAssertEqual(elements.filter { $0 == "path" }.count, 3, "axes + two series")
        XCTAssertTrue(svg.contains("stroke-dasharray"))
        // Log ticks: decades from 0.1 to 100 (span 2 decades → 1-2-5 mantissas).
        for label in [">0.5<", ">1<", ">10<", ">50<"] { XCTAssertTrue(svg.contains(label), label) }
        // The NaN and the negative value (on a log axis) break series one into two subpaths.
        let firstPath = svg.components(separatedBy: "<path d=\"").dropFirst(2).first ?? ""
        XCTAssertEqual(firstPath.prefix(while: { $0 != "\"" }).filter { $0 == "M" }.count, 2)
    }

    func testEmptyPlotIsStillValid() {
        let (_, text) = parse(SVGPlot(title: "nothing").render())
        XCTAssertTrue(text.contains("no data"))
        let (_, lossText) = parse(LossCurves.plot(metrics: []).render())
        XCTAssertTrue(lossText.contains("no data"))
        let (_, single) = parse(LossCurves.plot(metrics: [StepMetrics(step: 1, loss: 2, elapsedSeconds: 1)]).render())
        XCTAssertTrue(single.contains("training loss"))
    }

    func testNiceTicks() {
        let linear = AxisScale.linear(min: 0.37, max: 2.93, targetTicks: 6)
        XCTAssertEqual(linear.ticks, [0, 0.5, 1, 1.5, 2, 2.5, 3])
        XCTAssertEqual(linear.ticks.map(linear.label), ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0"])
        let steps = AxisScale.linear(min: 1, max: 1000, targetTicks: 8)
        XCTAssertEqual(steps.lower, 0)
        XCTAssertEqual(steps.upper, 1000)
        XCTAssertEqual(steps.ticks.map(steps.label).first, "0")
        let big = AxisScale.linear(min: 0, max: 60_000, targetTicks: 4)
        XCTAssertEqual(big.ticks.map(big.label), ["0", "20k", "40k", "60k"])
        let flat = AxisScale.linear(min: 2, max: 2)
        XCTAssertTrue(flat.lower < 2 && flat.upper > 2)
        let log = AxisScale.logarithmic(min: 0.003, max: 40)
        XCTAssertEqual(log.ticks.map(log.label), ["0.001", "0.01", "0.1", "1", "10", "100"])
        let narrow = AxisScale.logarithmic(min: 1.2, max: 3.1)
        XCTAssertEqual(narrow.ticks.map(narrow.label), ["1", "2", "3", "4"])
        let wide = AxisScale.logarithmic(min: 1e-9, max: 1e9)
        XCTAssertEqual(wide.ticks.map(wide.label), ["1e-9", "1e-6", "0.001", "1", "1000", "1e6", "1e9"])
    }
}

/// A tiny deterministic generator for synthetic data.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
