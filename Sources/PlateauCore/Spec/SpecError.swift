import Foundation

/// A refused specification: names the field (a dotted path such as `training.learningRate` or
/// `init.Q[1][0]`), the offending value as written, and what is allowed.
///
/// A file is read to its end and every problem found is kept: `field`, `value` and `reason` are the
/// first, `further` holds the others in the order they were found, and `description` lists them all
/// (one per line), so a user fixes a file in one pass.
public struct SpecError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var reason: String
    /// The other problems of the same input (empty when there was one).
    public var further: [SpecError] = []

    public init(field: String, value: String, reason: String) {
        self.field = field
        self.value = value
        self.reason = reason
    }

    /// Every problem, the first one first (each without `further`).
    public var all: [SpecError] {
        var first = self
        first.further = []
        return [first] + further.flatMap(\.all)
    }

    /// One problem: `field: reason (got value)`.
    public var line: String { "\(field): \(reason) (got \(value))" }

    /// One line per problem; several are preceded by their count.
    public var description: String {
        let problems = all
        if problems.count == 1 { return line }
        return "\(problems.count) problems:\n" + problems.map { "  " + $0.line }.joined(separator: "\n")
    }

    /// The problems of `list` as one error (nil for an empty list).
    public static func combined(_ list: [SpecError]) -> SpecError? {
        let flat = list.flatMap(\.all)
        guard var first = flat.first else { return nil }
        first.further = Array(flat.dropFirst())
        return first
    }
}

/// Collects the problems of one input while it is read, so that one bad field does not hide the
/// others. Reading goes on past a problem with a placeholder value (the field's default, or a
/// neutral value of the right shape); checks of a field that already failed to read are dropped
/// (`record` ignores a field, or a sub-field of a field, that already has a problem), so every
/// problem is reported once.
public final class SpecProblems: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [SpecError] = []

    public init() {}

    /// The problems recorded so far, in order.
    public var problems: [SpecError] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }

    /// Records `error` (every problem it carries) unless its field, or a field enclosing it, already has one.
    public func record(_ error: SpecError) {
        lock.lock()
        defer { lock.unlock() }
        for e in error.all where !list.contains(where: { Self.encloses($0.field, e.field) }) { list.append(e) }
    }

    /// Runs `body`; an error it throws is recorded (a `SpecError` as it is, anything else as a problem
    /// of the input as a whole) and `fallback` returned instead.
    public func attempt<T>(_ fallback: @autoclosure () -> T, _ body: () throws -> T) -> T {
        do {
            return try body()
        } catch let error as SpecError {
            record(error)
        } catch {
            record(SpecError(field: "(input)", value: "\(error)", reason: "could not be read"))
        }
        return fallback()
    }

    /// Runs a check; an error it throws is recorded.
    public func check(_ body: () throws -> Void) { attempt((), body) }

    /// Throws every recorded problem as one `SpecError`, ordered by section as a spec is written
    /// (the file itself, teacher, student, training, init, output, amp; within a section, as found).
    public func throwIfAny() throws {
        let order = ["(file)", "(input)", "teacher", "student", "training", "init", "output", "amp"]
        func rank(_ e: SpecError) -> Int {
            let section = e.field.prefix { $0 != "." && $0 != "[" }
            return order.firstIndex(of: String(section)) ?? order.count
        }
        let sorted = problems.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        if let error = SpecError.combined(sorted) { throw error }
    }

    /// Whether a problem on `outer` covers `inner` (`teacher.P` covers `teacher.P[0][1]`; `init` covers `init.M`).
    static func encloses(_ outer: String, _ inner: String) -> Bool {
        guard inner.hasPrefix(outer) else { return false }
        let rest = inner.dropFirst(outer.count)
        return rest.isEmpty || rest.first == "." || rest.first == "["
    }
}
