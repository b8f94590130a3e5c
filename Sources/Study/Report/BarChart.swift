// BarChart: a self-contained SVG grouped bar chart with optional error bars.
import Foundation

/// One series of bars (one bar per category).
public struct BarSeries: Sendable, Codable, Equatable {
    /// Legend name.
    public var name: String
    /// One value per category (nil = no bar, labelled n/a).
    public var values: [Double?]
    /// Optional (lower, upper) error bounds per category.
    public var lower: [Double?]?
    /// Upper bounds matching `lower`.
    public var upper: [Double?]?

    /// A series.
    public init(name: String, values: [Double?], lower: [Double?]? = nil, upper: [Double?]? = nil) {
        self.name = name
        self.values = values
        self.lower = lower
        self.upper = upper
    }
}

/// A grouped bar chart: categories along x, one bar per series within each category.
public struct BarChart: Sendable, Codable, Equatable {
    /// Chart title.
    public var title: String
    /// x-axis title.
    public var xTitle: String
    /// y-axis title.
    public var yTitle: String
    /// Category labels.
    public var categories: [String]
    /// Series.
    public var series: [BarSeries]
    /// Pixel width.
    public var width: Double
    /// Pixel height.
    public var height: Double

    /// A chart.
    public init(title: String, xTitle: String, yTitle: String, categories: [String], series: [BarSeries],
                width: Double = 760, height: Double = 420) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.categories = categories
        self.series = series
        self.width = width
        self.height = height
    }

    private func at(_ a: [Double?]?, _ i: Int) -> Double? {
        guard let a, i < a.count else { return nil }
        return a[i]
    }

    /// The chart as an SVG document.
    public func svg() -> String {
        let legendWidth = min(260, 60 + 7 * Double(series.map(\.name.count).max() ?? 4))
        let frame = ChartFrame(width: width, height: height, title: title, xTitle: xTitle, yTitle: yTitle, legendWidth: legendWidth)
        var values: [Double] = []
        for s in series {
            for i in categories.indices { values += [at(s.values, i), at(s.lower, i), at(s.upper, i)].compactMap { $0 } }
        }
        let y = AxisMapper(values: values, scale: .linear, pixelLo: frame.bottom, pixelHi: frame.top, includeZero: true)
        let groupWidth = (frame.right - frame.left) / Double(max(categories.count, 1))
        let barWidth = groupWidth * 0.8 / Double(max(series.count, 1))
        let centers = categories.indices.map { frame.left + groupWidth * (Double($0) + 0.5) }
        var s = frame.open() + frame.yAxis(y) + frame.xAxis(ticks: zip(centers, categories).map { ($0, $1) })
        let base = y.pixel(0) ?? frame.bottom
        for (k, ser) in series.enumerated() {
            let color = ChartPalette.color(k)
            s += "<g class=\"series\" data-name=\"\(Markup.escape(ser.name))\">\n"
            for i in categories.indices {
                let x0 = centers[i] - groupWidth * 0.4 + Double(k) * barWidth
                guard let v = at(ser.values, i), let py = y.pixel(v) else {
                    s += "<text x=\"\(Markup.n(x0 + barWidth / 2))\" y=\"\(Markup.n(base - 4))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#777\">n/a</text>\n"
                    continue
                }
                let top = min(py, base), h = abs(base - py)
                s += "<rect class=\"bar\" x=\"\(Markup.n(x0 + 1))\" y=\"\(Markup.n(top))\" width=\"\(Markup.n(max(barWidth - 2, 1)))\" height=\"\(Markup.n(h))\" fill=\"\(color)\"><title>\(Markup.escape("\(ser.name) / \(categories[i]): \(Format.number(v))"))</title></rect>\n"
                if let lo = at(ser.lower, i), let hi = at(ser.upper, i), let plo = y.pixel(lo), let phi = y.pixel(hi) {
                    let cx = x0 + barWidth / 2
                    s += "<path class=\"error-bar\" d=\"M\(Markup.n(cx)),\(Markup.n(plo)) V\(Markup.n(phi)) M\(Markup.n(cx - 4)),\(Markup.n(plo)) H\(Markup.n(cx + 4)) M\(Markup.n(cx - 4)),\(Markup.n(phi)) H\(Markup.n(cx + 4))\" stroke=\"#222\" stroke-width=\"1.3\" fill=\"none\"/>\n"
                }
            }
            s += "</g>\n"
        }
        s += frame.legend(series.enumerated().map { ($1.name, ChartPalette.color($0), false) })
        return s + "</svg>\n"
    }

    /// The plotted data as CSV: `category,series,value,lower,upper`.
    public func csv() -> String {
        var rows = [["category", "series", "value", "lower", "upper"]]
        for (i, c) in categories.enumerated() {
            for ser in series {
                rows.append([c, ser.name, at(ser.values, i).map(Format.number) ?? "", at(ser.lower, i).map(Format.number) ?? "",
                             at(ser.upper, i).map(Format.number) ?? ""])
            }
        }
        return DelimitedParser().render(rows)
    }
}
