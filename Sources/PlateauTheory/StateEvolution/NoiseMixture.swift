import Foundation
import PlateauCore
internal import CGSL

/// The expectation over a noisy output y = g(z) + √Δ' ξ as a sum over a y-grid, with the labels' mixture
/// weights tabulated: for each node y of a composite Gauss–Legendre rule (8 nodes per panel of width
/// ≈ σ = √Δ') over the label values ± 9σ, the labels ℓ with |y − v_ℓ| ≤ 9σ and their weights
/// N(y; v_ℓ, σ²). A quantity E_y[F(Σ_ℓ a_ℓ(y) m_ℓ)] is then Σ_nodes w_y F(Σ_ℓ a_ℓ m_ℓ) with no exp per
/// (node, label) pair.
///
/// For a binned output (label values on a grid of spacing h, thousands of labels) the panels are
/// m = max(1, round(σ/h)) bins wide and start on the grid, so node i of every panel sees the labels at
/// the same offsets with the same weights: one kernel of 8 × (18σ/h + 1) weights serves the whole grid.
/// For a discrete alphabet (a few labels) the panels are (range)/⌈range/σ⌉ wide and the weights are
/// tabulated per node.
struct NoiseMixture: Sendable {
    /// One y node: its quadrature weight, and its labels `firstLabel ..< firstLabel + count` with
    /// weights `weights[offset ..< offset + count]`.
    struct Node: Sendable {
        var y: Double
        var weight: Double
        var firstLabel: Int
        var count: Int
        var offset: Int
    }

    let nodes: [Node]
    let weights: [Double]

    /// The mixture of `labelValues` (sorted) with noise variance `variance` > 0; `binWidth` the spacing
    /// of a binned alphabet (label values origin + (ℓ − ½)h), nil for a discrete one.
    init(labelValues values: [Double], variance: Double, binWidth: Double?) {
        let sigma = variance.squareRoot(), norm = 1 / (2 * Double.pi * variance).squareRoot()
        let (gx, gw) = GSL.gaussLegendreUnit(8)
        let L = values.count
        var nodes: [Node] = [], weights: [Double] = []
        if let h = binWidth {
            let m = max(1, Int((sigma / h).rounded())), panel = Double(m) * h
            let v0 = values[0], reach = 9 * sigma / h
            // Kernel of node i: offsets j (labels ℓ = m·p + j of panel p) within 9σ of y = v₀ + (m(p + gx_i))h.
            var kernelStart: [Int] = [], low: [Int] = []
            for i in 0..<gx.count {
                let u = Double(m) * gx[i]
                let jLo = Int((u - reach).rounded(.up)), jHi = Int((u + reach).rounded(.down))
                kernelStart.append(weights.count); low.append(jLo)
                for j in jLo...jHi {
                    let d = (u - Double(j)) * h / sigma
                    weights.append(norm * exp(-0.5 * d * d))
                }
            }
            let pStart = Int((-9 * sigma / panel).rounded(.down))
            let pEnd = Int(((values[L - 1] - v0 + 9 * sigma) / panel).rounded(.up))
            for p in pStart..<pEnd {
                for i in 0..<gx.count {
                    let base = m * p + low[i], width = (i + 1 < gx.count ? kernelStart[i + 1] : weights.count) - kernelStart[i]
                    let first = max(0, base), last = min(L - 1, base + width - 1)
                    guard first <= last else { continue }
                    nodes.append(Node(y: v0 + Double(m) * (Double(p) + gx[i]) * h, weight: panel * gw[i],
                                      firstLabel: first, count: last - first + 1, offset: kernelStart[i] + (first - base)))
                }
            }
        } else {
            let lo = values[0] - 9 * sigma, hi = values[L - 1] + 9 * sigma
            let panels = max(1, Int(((hi - lo) / sigma).rounded(.up)))
            let width = (hi - lo) / Double(panels)
            for p in 0..<panels {
                for i in 0..<gx.count {
                    let y = lo + width * (Double(p) + gx[i])
                    guard let first = values.firstIndex(where: { abs($0 - y) <= 9 * sigma }) else { continue }
                    var last = first
                    while last + 1 < L && abs(values[last + 1] - y) <= 9 * sigma { last += 1 }
                    nodes.append(Node(y: y, weight: width * gw[i], firstLabel: first, count: last - first + 1, offset: weights.count))
                    for l in first...last {
                        let d = (y - values[l]) / sigma
                        weights.append(norm * exp(-0.5 * d * d))
                    }
                }
            }
        }
        self.nodes = nodes
        self.weights = weights
    }
}
