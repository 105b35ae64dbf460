import Foundation
import Yams

// From bytes to the plain tree the spec readers walk: UTF-8, size, nesting and alias checks on the
// raw text, then Yams's node tree converted here (not by Yams's `load`, which traps on a list or
// mapping used as a key). Shared by `Experiment` and `EstimationProblem`.

extension SpecReader {
    /// The largest spec text read (a spec is a few hundred bytes; the bound keeps every later step cheap).
    static let maximumTextLength = 1 << 20
    /// The deepest nesting of mappings and lists accepted (a spec needs 4).
    static let maximumNesting = 32

    /// The top-level mapping of a spec text. Before the text reaches the YAML reader it is refused,
    /// naming "(file)", when it is longer than `maximumTextLength`, nests deeper than
    /// `maximumNesting` (the tree is built recursively), or uses an alias (`*name`: a few aliases
    /// expand to an exponentially large tree, and a spec never needs one).
    static func topLevel(_ specText: String) throws -> [String: Any] {
        try checkStructure(specText)
        let tree: Any?
        do {
            tree = try Yams.compose(yaml: specText).map { try plainTree($0, path: "") }
        } catch let error as SpecError {
            throw error
        } catch {
            throw SpecError(field: "(file)", value: "unparseable text", reason: "not valid YAML or JSON: \(error)")
        }
        guard let map = tree as? [String: Any] else {
            throw SpecError(field: "(file)", value: Experiment.show(tree), reason: "the top level must be a mapping of sections (teacher, student, training, …)")
        }
        return map
    }

    /// A YAML node as plain values (`[String: Any]`, `[Any]`, scalars as Yams resolves them). Mapping
    /// keys must be scalars (Yams's own `load` traps on a list or mapping used as a key).
    static func plainTree(_ node: Node, path: String) throws -> Any {
        switch node {
        case .scalar: return node.any
        case let .sequence(items):
            return try items.enumerated().map { try plainTree($1, path: "\(path)[\($0)]") }
        case let .mapping(pairs):
            var map: [String: Any] = [:]
            for (key, value) in pairs {
                guard case let .scalar(k) = key else {
                    throw SpecError(field: path.isEmpty ? "(file)" : path, value: "a key that is a list or mapping",
                                    reason: "mapping keys must be plain names")
                }
                map[k.string] = try plainTree(value, path: path.isEmpty ? k.string : "\(path).\(k.string)")
            }
            return map
        case .alias:
            throw SpecError(field: path.isEmpty ? "(file)" : path, value: "an alias", reason: "YAML aliases (*name) are not accepted in a spec")
        }
    }

    /// The size, nesting and alias checks of `topLevel`, on the raw text: flow brackets outside
    /// quotes and comments, block indentation levels and `- ` sequence entries are counted together.
    static func checkStructure(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumTextLength else {
            throw SpecError(field: "(file)", value: "\(bytes.count) bytes", reason: "a spec may have at most \(maximumTextLength) bytes")
        }
        var flow = 0, indents: [Int] = [], line = 1
        var i = 0
        func refuse(_ what: String) -> SpecError {
            SpecError(field: "(file)", value: "line \(line)", reason: what)
        }
        while i < bytes.count {
            // Start of a line: its indentation and leading "- " entries.
            var indent = 0
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { indent += 1; i += 1 }
            var dashes = 0
            while i + 1 < bytes.count, bytes[i] == UInt8(ascii: "-"), bytes[i + 1] == UInt8(ascii: " ") || bytes[i + 1] == UInt8(ascii: "\t") {
                dashes += 1; i += 2
                while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            }
            let blank = i >= bytes.count || bytes[i] == UInt8(ascii: "\n") || bytes[i] == UInt8(ascii: "#")
                || bytes[i] == UInt8(ascii: "\r")
            if !blank && flow == 0 {
                while let last = indents.last, last > indent { indents.removeLast() }
                if indents.last != indent { indents.append(indent) }
            }
            if indents.count + dashes + flow > maximumNesting {
                throw refuse("nested deeper than \(maximumNesting) levels")
            }
            // The rest of the line.
            var tokenStart = true, previous: UInt8 = 0
            while i < bytes.count, bytes[i] != UInt8(ascii: "\n") {
                let c = bytes[i]
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    // A quoted scalar (may span lines): skip to its closing quote.
                    i += 1
                    while i < bytes.count, bytes[i] != c {
                        if c == UInt8(ascii: "\""), bytes[i] == UInt8(ascii: "\\") { i += 1 }
                        if i < bytes.count, bytes[i] == UInt8(ascii: "\n") { line += 1 }
                        i += 1
                    }
                case UInt8(ascii: "#") where tokenStart:
                    while i + 1 < bytes.count, bytes[i + 1] != UInt8(ascii: "\n") { i += 1 }
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    flow += 1
                    if indents.count + dashes + flow > maximumNesting { throw refuse("nested deeper than \(maximumNesting) levels") }
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    flow = max(0, flow - 1)
                case UInt8(ascii: "*") where (previous == 0 || ":[{,".utf8.contains(previous))
                    && i + 1 < bytes.count && bytes[i + 1] != UInt8(ascii: " "):
                    throw refuse("YAML aliases (*name) are not accepted in a spec")
                default: break
                }
                if c != UInt8(ascii: " "), c != UInt8(ascii: "\t") { previous = c }
                tokenStart = c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "[") || c == UInt8(ascii: "{")
                    || c == UInt8(ascii: ",") || c == UInt8(ascii: ":")
                i += 1
            }
            line += 1
            i += 1
        }
    }

    /// The text of spec bytes, which must be UTF-8.
    static func text(of data: Data) throws -> String {
        guard let text = String(validating: data, as: UTF8.self) else {
            let offset = Self.firstInvalidUTF8(data)
            throw SpecError(field: "(file)", value: "byte \(offset)", reason: "is not UTF-8 text")
        }
        return text
    }

    static func firstInvalidUTF8(_ data: Data) -> Int {
        var decoder = UTF8()
        var iterator = data.makeIterator()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case let .scalarValue(s): offset += UTF8.width(s)
            case .emptyInput: return offset
            case .error: return offset
            }
        }
    }

    static func read(_ url: URL) throws -> String {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SpecError(field: "--spec", value: url.path, reason: "cannot read the file: \(error.localizedDescription)")
        }
        return try text(of: data)
    }
}
