import Foundation

/// A scalar activation σ of a student unit or of a committee teacher's hidden unit.
///
/// Conventions (EQUATIONS.md §1.4): `erf` means σ(x) = erf(x/√2), so that σ' is √(2/π)·e^{−x²/2};
/// `linear` is σ(x) = x; `relu` is max(0, x), with σ'(x) = 1 for x > 0 and 0 otherwise.
/// Theory and simulation both read these definitions: nothing about an activation is written twice.
public enum Activation: String, Sendable, Hashable, CaseIterable, Codable {
    case erf
    case linear
    case relu

    /// Parses an activation name (case-insensitive; "erf(x/sqrt2)" style aliases are not accepted).
    public init?(name: String) {
        self.init(rawValue: name.lowercased())
    }

    public var name: String { rawValue }

    @inlinable public func value(_ x: Double) -> Double {
        switch self {
        case .erf: return Foundation.erf(x * 0.70710678118654752440)
        case .linear: return x
        case .relu: return x > 0 ? x : 0
        }
    }

    @inlinable public func derivative(_ x: Double) -> Double {
        switch self {
        case .erf: return 0.79788456080286535588 * Foundation.exp(-0.5 * x * x)
        case .linear: return 1
        case .relu: return x > 0 ? 1 : 0
        }
    }

    /// Human description with the convention spelled out.
    public var formula: String {
        switch self {
        case .erf: return "erf(x/√2)"
        case .linear: return "x"
        case .relu: return "max(0, x)"
        }
    }
}
