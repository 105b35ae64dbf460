import Foundation

/// Deterministic seed splitting: every random stream in Plateau comes from an explicit seed.
///
/// `seed(master:index:)` mixes the master seed and the index with the SplitMix64 finaliser
/// (Steele, Lea & Flood 2014; the constants of Vigna's `splitmix64.c`). For a fixed master the map
/// index → seed is a bijection of 64-bit words composed with an injective one, so distinct indices
/// always give distinct seeds; the result does not depend on which thread asks, or when.
public enum SeedSequence {
    /// The seed of stream `index` (≥ 0) under `master`.
    public static func seed(master: UInt64, index: Int) -> UInt64 {
        let h = mix(master &+ 0x9E37_79B9_7F4A_7C15)
        return mix(h ^ (UInt64(truncatingIfNeeded: index) &* 0xD605_BBB5_8C8A_BBB5 &+ 0x6A09_E667_F3BC_C909))
    }

    /// The SplitMix64 output function: a bijection of UInt64 with good avalanche.
    @inlinable public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256++ (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2021):
/// period 2²⁵⁶ − 1, 64-bit outputs, about a nanosecond per output.
///
/// Seeding from one `UInt64` fills the 256-bit state with four successive SplitMix64 outputs, as the
/// authors recommend. `fillStandardNormal` draws N(0, 1) variates with a 256-layer ziggurat.
public struct Xoshiro256PlusPlus: RandomNumberGenerator, Sendable {
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// The generator with state `(s0, s1, s2, s3)` (not all zero), e.g. for reference test vectors.
    public init(state s0: UInt64, _ s1: UInt64, _ s2: UInt64, _ s3: UInt64) {
        precondition(s0 | s1 | s2 | s3 != 0, "xoshiro256++ state must not be all zero")
        state = (s0, s1, s2, s3)
    }

    /// The generator seeded from `seed` through SplitMix64.
    public init(seed: UInt64) {
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            return SeedSequence.mix(x)
        }
        let a = next(), b = next(), c = next(), d = next()
        // SplitMix64 outputs are a bijection of distinct counters: never four zeros.
        state = (a, b, c, d)
    }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        let result = (state.0 &+ state.3).rotated(23) &+ state.0
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3.rotated(45)
        return result
    }

    /// A uniform double in [0, 1) with 53 random bits.
    @inlinable @inline(__always)
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform double in (0, 1]: safe for logarithms.
    @inlinable @inline(__always)
    public mutating func nextUniformPositive() -> Double {
        Double((next() >> 11) + 1) * 0x1p-53
    }

    /// One standard normal variate (ziggurat; prefer `fillStandardNormal` for many).
    public mutating func nextStandardNormal() -> Double {
        var z = 0.0
        withUnsafeMutablePointer(to: &z) { fillStandardNormal($0, count: 1) }
        return z
    }

    /// Fills `buffer` with i.i.d. N(0, 1) variates.
    public mutating func fillStandardNormal(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard let base = buffer.baseAddress else { return }
        fillStandardNormal(base, count: buffer.count)
    }

    /// Fills `count` doubles at `out` with i.i.d. N(0, 1) variates.
    ///
    /// Method: the Marsaglia–Tsang ziggurat with 256 layers in the 64-bit form of Doornik (2005):
    /// one 64-bit output gives the layer (low 8 bits) and a signed uniform (high 52 bits); about
    /// 98.8 % of draws are accepted by one comparison. Tables come from `ZigguratTables`.
    public mutating func fillStandardNormal(_ out: UnsafeMutablePointer<Double>, count: Int) {
        let tables = ZigguratTables.shared
        let X = tables.x, F = tables.f
        var s0 = state.0, s1 = state.1, s2 = state.2, s3 = state.3
        var n = 0
        while n < count {
            // xoshiro256++ inlined on local state.
            let bits = (s0 &+ s3).rotated(23) &+ s0
            let t = s1 << 17
            s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
            s3 = s3.rotated(45)

            let i = Int(truncatingIfNeeded: bits & 0xFF)
            // Signed uniform in [−1, 1) from the top 52 bits: [2, 4) − 3.
            let u = Double(bitPattern: (bits >> 12) | 0x4000_0000_0000_0000) - 3.0
            let x = u * X[i]
            if abs(x) < X[i + 1] {
                out[n] = x
                n += 1
                continue
            }
            // Slow path (≈1.2 %): tail of the base strip, or the wedge of layer i.
            var rng = Xoshiro256PlusPlus(unchecked: (s0, s1, s2, s3))
            if i == 0 {
                out[n] = Self.tail(&rng, r: X[1], negative: u < 0)
                n += 1
            } else if F[i] + (F[i + 1] - F[i]) * rng.nextUniform() < Foundation.exp(-0.5 * x * x) {
                out[n] = x
                n += 1
            }
            (s0, s1, s2, s3) = rng.state
        }
        state = (s0, s1, s2, s3)
    }

    @usableFromInline init(unchecked state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    /// Marsaglia (1964): the normal tail beyond r.
    private static func tail(_ rng: inout Xoshiro256PlusPlus, r: Double, negative: Bool) -> Double {
        while true {
            let x = -Foundation.log(rng.nextUniformPositive()) / r
            let y = -Foundation.log(rng.nextUniformPositive())
            if 2 * y > x * x { return negative ? -(r + x) : r + x }
        }
    }
}

extension UInt64 {
    @inlinable @inline(__always) func rotated(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 &- k)) }
}

/// The 256-layer ziggurat for the unnormalised density f(x) = exp(−x²/2), computed once at start-up.
///
/// Layer boundaries x₁ = r > x₂ > … > x₂₅₆ = 0 with equal areas v: each layer i ≥ 1 is the
/// rectangle [0, xᵢ] × [f(xᵢ), f(xᵢ₊₁)], and the base strip (i = 0) is [0, r] × [0, f(r)] plus the
/// tail beyond r, represented by a rectangle of width x₀ = v/f(r). r = 3.6541528853610088 is
/// Marsaglia & Tsang's (2000) value for 256 layers; v = r f(r) + √(π/2) erfc(r/√2) follows from it.
///
/// The tables live in memory allocated once and never freed (4 KiB), read through raw pointers so
/// the sampling loop has no array bookkeeping.
struct ZigguratTables: @unchecked Sendable {
    /// x[0…256] (x[0] = v/f(r), x[1] = r, x[256] = 0).
    let x: UnsafePointer<Double>
    /// f[i] = exp(−x[i]²/2) (f[0] = f(x₀), f[256] = 1).
    let f: UnsafePointer<Double>

    static let shared = ZigguratTables()

    static let r = 3.6541528853610088

    init() {
        let r = Self.r
        func density(_ t: Double) -> Double { Foundation.exp(-0.5 * t * t) }
        let v = r * density(r) + (Double.pi / 2).squareRoot() * Foundation.erfc(r / 2.0.squareRoot())
        var x = [Double](repeating: 0, count: 257)
        x[0] = v / density(r)
        x[1] = r
        for i in 1..<255 {
            x[i + 1] = (-2 * Foundation.log(v / x[i] + density(x[i]))).squareRoot()
        }
        x[256] = 0
        // The top layer must close at the mode: x₂₅₅ (1 − f(x₂₅₅)) = v, to the precision of r.
        let closure = x[255] * (1 - density(x[255])) / v
        precondition(abs(closure - 1) < 1e-6, "ziggurat tables do not close (\(closure))")
        let xp = UnsafeMutablePointer<Double>.allocate(capacity: 257)
        xp.initialize(from: x, count: 257)
        let fp = UnsafeMutablePointer<Double>.allocate(capacity: 257)
        fp.initialize(from: x.map(density), count: 257)
        self.x = UnsafePointer(xp)
        self.f = UnsafePointer(fp)
    }
}
