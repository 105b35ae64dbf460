/// A refused specification: names the field (a dotted path such as `training.learningRate` or
/// `init.Q[1][0]`), the offending value as written, and what is allowed.
public struct SpecError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var reason: String

    public init(field: String, value: String, reason: String) {
        self.field = field
        self.value = value
        self.reason = reason
    }

    public var description: String { "\(field): \(reason) (got \(value))" }
}
