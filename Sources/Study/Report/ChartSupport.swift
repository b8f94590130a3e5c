// ChartSupport: scales, nice ticks, palette and SVG/XML escaping shared by the chart builders.
import Foundation

/// Escaping for XML/HTML text and attribute values.
public enum Markup {
    /// Escapes `&`, `<`, `>`, `"` and `'` (safe in text and in quoted attributes).
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// A number for SVG coordinates (2 decimals, no exponent).
    static func n(_ x: Double) -> String { String(format: "%.2f", x.isFinite ? x : 0) }
}

/// The scale of a chart's numeric axis.
public enum AxisScale: String, Sendable, Codable {
    /// Linear.
    case linear
    /// Base-10 logarithmic (positive values only; non-positive values are not drawn).
    case log10
}

/// Maps data values to pixels along one axis and proposes tick values.
struct AxisMapper {
    var scale: AxisScale
    var lo: Double
    var hi: Double
    var pixelLo: Double
    var pixelHi: Double

    /// An axis covering `values` (padded to nice bounds); `includeZero` for bar charts.
    init(values: [Double], scale: AxisScale, pixelLo: Double, pixelHi: Double, includeZero: Bool = false) {
        self.pixelLo = pixelLo
        self.pixelHi = pixelHi
        var usable = values.filter { $0.isFinite && (scale == .linear || $0 > 0) }
        if includeZero && scale == .linear { usable.append(0) }
        let scale = usable.isEmpty && scale == .log10 ? AxisScale.linear : scale
        self.scale = scale
        if scale == .log10 {
            lo = Foundation.log10(usable.min() ?? 1).rounded(.down)
            hi = Foundation.log10(usable.max() ?? 10).rounded(.up)
            if hi <= lo { hi = lo + 1 }
        } else {
            var a = usable.min() ?? 0, b = usable.max() ?? 1
            if a == b { a -= a == 0 ? 0 : abs(a) * 0.5; b += b == 0 ? 1 : abs(b) * 0.5 }
            let step = NiceTicks.step(lo: a, hi: b, count: 5)
            lo = (a / step).rounded(.down) * step
            hi = (b / step).rounded(.up) * step
        }
    }

    /// The pixel position of a value (nil when it cannot be drawn on this scale).
    func pixel(_ v: Double) -> Double? {
        guard v.isFinite else { return nil }
        let t: Double
        if scale == .log10 {
            guard v > 0 else { return nil }
            t = (Foundation.log10(v) - lo) / (hi - lo)
        } else {
            t = (v - lo) / (hi - lo)
        }
        return pixelLo + t * (pixelHi - pixelLo)
    }

    /// Tick values with their labels.
    func ticks() -> [(value: Double, label: String)] {
        if scale == .log10 {
            return stride(from: lo, through: hi, by: 1).map { e in (pow(10, e), NiceTicks.label(pow(10, e), step: pow(10, e))) }
        }
        let step = NiceTicks.step(lo: lo, hi: hi, count: 5)
        var out: [(Double, String)] = []
        var v = lo
        while v <= hi + step * 1e-9 {
            let clean = abs(v) < step * 1e-9 ? 0 : v
            out.append((clean, NiceTicks.label(clean, step: step)))
            v += step
        }
        return out
    }
}

/// "Nice" tick steps (1, 2, 5 x 10^k) and labels.
enum NiceTicks {
    /// A step giving about `count` intervals over [lo, hi].
    static func step(lo: Double, hi: Double, count: Int) -> Double {
        let span = max(hi - lo, 1e-300)
        let raw = span / Double(max(count, 1))
        let mag = pow(10, (Foundation.log10(raw)).rounded(.down))
        let f = raw / mag
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10
        return nice * mag
    }

    /// A label with as many decimals as the step needs; exponent notation for tiny or huge values.
    static func label(_ v: Double, step: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e6 || abs(v) < 1e-3 { return String(format: "%.0e", v).replacingOccurrences(of: "e-0", with: "e-").replacingOccurrences(of: "e+0", with: "e") }
        let decimals = max(0, Int(-(Foundation.log10(step)).rounded(.down)))
        return String(format: "%.\(decimals)f", v)
    }
}

/// A colour-blind-safe palette (Okabe-Ito).
public enum ChartPalette {
    /// Series colours in order.
    public static let colors = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    /// The colour of series `i` (cycling).
    public static func color(_ i: Int) -> String { colors[i % colors.count] }
}

/// Shared frame drawing: background, title, axes with ticks and titles, legend.
struct ChartFrame {
    var width: Double
    var height: Double
    var title: String
    var xTitle: String
    var yTitle: String
    /// Plot area.
    var left = 70.0, top = 44.0, right: Double, bottom: Double

    init(width: Double, height: Double, title: String, xTitle: String, yTitle: String, legendWidth: Double) {
        self.width = width
        self.height = height
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        right = width - 20 - legendWidth
        bottom = height - 60
    }

    /// Opening tag, background, title.
    func open() -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" role=\"img\" aria-label=\"\(Markup.escape(title))\">\n"
            + "<title>\(Markup.escape(title))</title>\n"
            + "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#ffffff\"/>\n"
            + "<text class=\"chart-title\" x=\"\(Markup.n(width / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(Markup.escape(title))</text>\n"
    }

    /// The y axis with grid lines and tick labels.
    func yAxis(_ y: AxisMapper) -> String {
        var s = "<g class=\"y-axis\">\n"
        for t in y.ticks() {
            guard let py = y.pixel(t.value) else { continue }
            s += "<line x1=\"\(Markup.n(left))\" y1=\"\(Markup.n(py))\" x2=\"\(Markup.n(right))\" y2=\"\(Markup.n(py))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text class=\"tick-label\" x=\"\(Markup.n(left - 6))\" y=\"\(Markup.n(py + 4))\" text-anchor=\"end\" font-size=\"12\">\(Markup.escape(t.label))</text>\n"
        }
        s += "<line x1=\"\(Markup.n(left))\" y1=\"\(Markup.n(top))\" x2=\"\(Markup.n(left))\" y2=\"\(Markup.n(bottom))\" stroke=\"#333\"/>\n"
        let cy = (top + bottom) / 2
        s += "<text class=\"axis-title\" x=\"18\" y=\"\(Markup.n(cy))\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 \(Markup.n(cy)))\">\(Markup.escape(yTitle))</text>\n"
        return s + "</g>\n"
    }

    /// The x axis line and title (tick labels are drawn by the chart).
    func xAxis(ticks: [(pixel: Double, label: String)]) -> String {
        var s = "<g class=\"x-axis\">\n<line x1=\"\(Markup.n(left))\" y1=\"\(Markup.n(bottom))\" x2=\"\(Markup.n(right))\" y2=\"\(Markup.n(bottom))\" stroke=\"#333\"/>\n"
        for t in ticks {
            s += "<line x1=\"\(Markup.n(t.pixel))\" y1=\"\(Markup.n(bottom))\" x2=\"\(Markup.n(t.pixel))\" y2=\"\(Markup.n(bottom + 5))\" stroke=\"#333\"/>\n"
            s += "<text class=\"tick-label\" x=\"\(Markup.n(t.pixel))\" y=\"\(Markup.n(bottom + 19))\" text-anchor=\"middle\" font-size=\"12\">\(Markup.escape(t.label))</text>\n"
        }
        s += "<text class=\"axis-title\" x=\"\(Markup.n((left + right) / 2))\" y=\"\(Markup.n(height - 16))\" text-anchor=\"middle\" font-size=\"13\">\(Markup.escape(xTitle))</text>\n"
        return s + "</g>\n"
    }

    /// A legend right of the plot: one swatch and name per entry.
    func legend(_ entries: [(name: String, color: String, dashed: Bool)]) -> String {
        var s = "<g class=\"legend\">\n"
        for (i, e) in entries.enumerated() {
            let y = top + 8 + Double(i) * 20
            let dash = e.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<line x1=\"\(Markup.n(right + 14))\" y1=\"\(Markup.n(y))\" x2=\"\(Markup.n(right + 38))\" y2=\"\(Markup.n(y))\" stroke=\"\(e.color)\" stroke-width=\"3\"\(dash)/>\n"
            s += "<text class=\"legend-label\" x=\"\(Markup.n(right + 44))\" y=\"\(Markup.n(y + 4))\" font-size=\"12\">\(Markup.escape(e.name))</text>\n"
        }
        return s + "</g>\n"
    }
}
