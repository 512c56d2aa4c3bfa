import ArgumentParser
import Formats
import Foundation

/// `--verbose`, shared by every command.
struct DiagnosticOptions: ParsableArguments {
    @Flag(help: "On an error, also print its details: every problem of a list, and the error as the library reported it.")
    var verbose = false
}

/// A command that takes `--verbose`.
protocol Diagnosable {
    var diagnostics: DiagnosticOptions { get }
}

/// An error as the user sees it: `Error: <one line>`, then details with `--verbose`.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// Turns any error a command throws into one plain line naming the file or option and the
/// problem. Errors that list several problems keep the first few in the line; `--verbose`
/// prints them all, each on its own line, and the error as the library reported it.
enum ErrorPresenter {
    /// Problems of a list shown in the one line.
    static let problemsInLine = 5

    static func present(_ error: any Error, verbose: Bool) -> any Error {
        // ArgumentParser's own errors (usage errors, help requests from its built-in help command).
        if error is ValidationError || error is CleanExit || error is ExitCode
            || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") { return error }
        if let output = error as? OutputError, output.isUsageError { return ValidationError(output.description) }
        let lines = ErrorText.plain(error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard var line = lines.first else { return CommandFailure(description: "failed without a message") }
        let problems = lines.dropFirst()
        if !problems.isEmpty {
            line += (line.hasSuffix(":") ? " " : ": ") + problems.prefix(problemsInLine).joined(separator: "; ")
            if problems.count > problemsInLine {
                line += "; … \(problems.count - problemsInLine) more" + (verbose ? "" : " (--verbose lists them all)")
            }
        }
        if verbose {
            if problems.count > problemsInLine { line += "\n  " + problems.joined(separator: "\n  ") }
            line += "\ndetails: \(String(reflecting: error))"
        }
        return CommandFailure(description: line)
    }
}
