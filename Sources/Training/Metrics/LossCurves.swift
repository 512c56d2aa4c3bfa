import Foundation

/// `loss.svg`: training and evaluation loss against the optimiser step, from `metrics.jsonl`.
///
/// The per-step training loss is noisy, so it is drawn thin and faint, with a centred moving
/// average (window ≈ 5 % of the steps, at least 5) drawn bold over a ± 1 standard deviation band
/// of the same window; evaluation loss is drawn with markers. With fewer than 20 training points
/// the raw curve is drawn bold instead. A step logged twice (a run resumed without
/// `MetricsLog.Mode.resume`) counts once, with its last record.
public enum LossCurves {
    public static let fileName = "loss.svg"

    /// The chart. `logY` nil chooses a log axis when the losses span a factor of 10 or more.
    public static func plot(metrics: [StepMetrics], title: String = "Loss", logY: Bool? = nil) -> SVGPlot {
        var trainByStep: [Int: Double] = [:], evalByStep: [Int: Double] = [:]
        for record in metrics {
            if let loss = record.loss { trainByStep[record.step] = loss }
            if let loss = record.evalLoss { evalByStep[record.step] = loss }
        }
        let train = trainByStep.sorted { $0.key < $1.key }.map { SVGPlot.Point(x: Double($0.key), y: $0.value) }
        let eval = evalByStep.sorted { $0.key < $1.key }.map { SVGPlot.Point(x: Double($0.key), y: $0.value) }

        let finite = (train + eval).map(\.y).filter { $0.isFinite }
        let autoLog = (finite.min() ?? 0) > 0 && (finite.max() ?? 0) / (finite.min() ?? 1) >= 10
        let blue = SVGPlot.palette[0], vermillion = SVGPlot.palette[1]

        var series: [SVGPlot.Series] = []
        if train.count >= 20 {
            let window = max(5, train.count / 20) | 1  // odd, so the average is centred
            let (mean, band) = movingAverage(train, window: window)
            series.append(.init(name: "training loss (per step)", points: train, color: blue, lineWidth: 1, opacity: 0.35))
            series.append(.init(name: "training loss (mean of \(window) ± 1 std)", points: mean, band: band,
                                color: blue, lineWidth: 2.25))
        } else if !train.isEmpty {
            series.append(.init(name: "training loss", points: train, color: blue, lineWidth: 2, markers: train.count <= 12))
        }
        if !eval.isEmpty {
            series.append(.init(name: "eval loss", points: eval, color: vermillion, lineWidth: 2, markers: true))
        }
        return SVGPlot(title: title, xLabel: "optimizer step", yLabel: "loss (nats per token)",
                       logY: logY ?? autoLog, series: series)
    }

    /// Writes the chart to `url` atomically.
    public static func write(metrics: [StepMetrics], to url: URL, title: String = "Loss", logY: Bool? = nil) throws(MetricsError) {
        try plot(metrics: metrics, title: title, logY: logY).write(to: url)
    }

    /// Centred moving mean and mean ± std over up to `window` neighbouring points (fewer at the
    /// ends), skipping non-finite values; Double prefix sums.
    static func movingAverage(_ points: [SVGPlot.Point], window: Int) -> ([SVGPlot.Point], [SVGPlot.BandPoint]) {
        var sum = [0.0], sumSquares = [0.0], counts = [0]
        for p in points {
            let ok = p.y.isFinite
            sum.append(sum.last! + (ok ? p.y : 0))
            sumSquares.append(sumSquares.last! + (ok ? p.y * p.y : 0))
            counts.append(counts.last! + (ok ? 1 : 0))
        }
        let half = window / 2
        var mean: [SVGPlot.Point] = [], band: [SVGPlot.BandPoint] = []
        for (i, p) in points.enumerated() {
            let lo = max(0, i - half), hi = min(points.count, i + half + 1)
            let k = Double(counts[hi] - counts[lo])
            guard k > 0 else { continue }
            let m = (sum[hi] - sum[lo]) / k
            let variance = max(0, (sumSquares[hi] - sumSquares[lo]) / k - m * m)
            let std = variance.squareRoot()
            mean.append(.init(x: p.x, y: m))
            band.append(.init(x: p.x, lower: m - std, upper: m + std))
        }
        return (mean, band)
    }
}
