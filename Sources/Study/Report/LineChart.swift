// LineChart: a self-contained SVG line chart with several series, legend, axes and error bands.
import Foundation

/// One point of a line series; `lower`/`upper` draw an error bar when present.
public struct ChartPoint: Sendable, Codable, Equatable {
    /// x value.
    public var x: Double
    /// y value (nil = gap in the line).
    public var y: Double?
    /// Lower error bound.
    public var lower: Double?
    /// Upper error bound.
    public var upper: Double?

    /// A point.
    public init(x: Double, y: Double?, lower: Double? = nil, upper: Double? = nil) {
        self.x = x
        self.y = y
        self.lower = lower
        self.upper = upper
    }
}

/// A named line.
public struct LineSeries: Sendable, Codable, Equatable {
    /// Legend name.
    public var name: String
    /// Points (drawn in x order).
    public var points: [ChartPoint]
    /// Dashed stroke.
    public var dashed: Bool
    /// Explicit colour (nil = palette).
    public var color: String?

    /// A series.
    public init(name: String, points: [ChartPoint], dashed: Bool = false, color: String? = nil) {
        self.name = name
        self.points = points
        self.dashed = dashed
        self.color = color
    }
}

/// A multi-series line chart rendered to standalone SVG (no scripts, no external resources).
public struct LineChart: Sendable, Codable, Equatable {
    /// Chart title.
    public var title: String
    /// x-axis title.
    public var xTitle: String
    /// y-axis title.
    public var yTitle: String
    /// The series.
    public var series: [LineSeries]
    /// x-axis scale.
    public var xScale: AxisScale
    /// Pixel width.
    public var width: Double
    /// Pixel height.
    public var height: Double

    /// A chart.
    public init(title: String, xTitle: String, yTitle: String, series: [LineSeries], xScale: AxisScale = .linear,
                width: Double = 760, height: Double = 420) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.series = series
        self.xScale = xScale
        self.width = width
        self.height = height
    }

    /// The chart as an SVG document.
    public func svg() -> String {
        let legendWidth = min(260, 60 + 7 * Double(series.map(\.name.count).max() ?? 4))
        let frame = ChartFrame(width: width, height: height, title: title, xTitle: xTitle, yTitle: yTitle, legendWidth: legendWidth)
        let all = series.flatMap(\.points)
        let x = AxisMapper(values: all.map(\.x), scale: xScale, pixelLo: frame.left + 10, pixelHi: frame.right - 10)
        let yValues = all.compactMap(\.y) + all.compactMap(\.lower) + all.compactMap(\.upper)
        let y = AxisMapper(values: yValues, scale: .linear, pixelLo: frame.bottom, pixelHi: frame.top)
        var s = frame.open() + frame.yAxis(y)
        s += frame.xAxis(ticks: x.ticks().compactMap { t in x.pixel(t.value).map { ($0, t.label) } })
        if all.isEmpty {
            s += "<text x=\"\(Markup.n((frame.left + frame.right) / 2))\" y=\"\(Markup.n((frame.top + frame.bottom) / 2))\" text-anchor=\"middle\" font-size=\"14\" fill=\"#777\">no data</text>\n"
        }
        for (i, line) in series.enumerated() {
            let color = line.color ?? ChartPalette.color(i)
            let pts = line.points.sorted { $0.x < $1.x }
            s += "<g class=\"series\" data-name=\"\(Markup.escape(line.name))\">\n"
            // Split into runs of drawable points; a nil y breaks the line.
            var runs: [[(Double, Double)]] = [[]]
            for p in pts {
                if let px = x.pixel(p.x), let yv = p.y, let py = y.pixel(yv) { runs[runs.count - 1].append((px, py)) } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            let dash = line.dashed ? " stroke-dasharray=\"6 4\"" : ""
            for run in runs where run.count > 1 {
                let d = run.map { "\(Markup.n($0.0)),\(Markup.n($0.1))" }.joined(separator: " ")
                s += "<polyline points=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dash)/>\n"
            }
            for p in pts {
                guard let px = x.pixel(p.x), let yv = p.y, let py = y.pixel(yv) else { continue }
                if let lo = p.lower, let hi = p.upper, let plo = y.pixel(lo), let phi = y.pixel(hi) {
                    s += "<line class=\"error-bar\" x1=\"\(Markup.n(px))\" y1=\"\(Markup.n(plo))\" x2=\"\(Markup.n(px))\" y2=\"\(Markup.n(phi))\" stroke=\"\(color)\" stroke-width=\"1.5\"/>\n"
                }
                s += "<circle cx=\"\(Markup.n(px))\" cy=\"\(Markup.n(py))\" r=\"3.5\" fill=\"\(color)\"><title>\(Markup.escape("\(line.name): x=\(Format.number(p.x)), y=\(Format.number(yv))"))</title></circle>\n"
            }
            s += "</g>\n"
        }
        s += frame.legend(series.enumerated().map { ($1.name, $1.color ?? ChartPalette.color($0), $1.dashed) })
        return s + "</svg>\n"
    }

    /// The plotted data as long-format CSV: `series,x,y,lower,upper`.
    public func csv() -> String {
        var rows = [["series", "x", "y", "lower", "upper"]]
        for line in series {
            for p in line.points {
                rows.append([line.name, Format.number(p.x), p.y.map(Format.number) ?? "", p.lower.map(Format.number) ?? "",
                             p.upper.map(Format.number) ?? ""])
            }
        }
        return DelimitedParser().render(rows)
    }
}
