import ArgumentParser
import Distributed
import Foundation

@main
struct Pissa: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pissa",
        abstract: "PiSSA fine-tuning toolkit: principal-singular-value adapters for decoder language models (Llama, Qwen, Mistral, Gemma 3, …), on CPU.",
        subcommands: [
            InitCommand.self,
            TrainCommand.self,
            GenerateCommand.self,
            EvalCommand.self,
            TokenizeCommand.self,
            ConvertModelCommand.self,
            ConvertCommand.self,
            MergeCommand.self,
            ExportCommand.self,
            QuantErrorCommand.self,
            SpectrumCommand.self,
            DataCommand.self,
            CompareCommand.self,
            ReportCommand.self,
            BenchCommand.self,
            DoctorCommand.self,
        ]
    )

    /// ArgumentParser's `main`, with every error a command throws shown as one plain line
    /// (`ErrorPresenter`; `--verbose` adds the details).
    ///
    /// Under `mpirun`, errors of ranks other than 0 are prefixed with their rank; a rank that
    /// fails exits non-zero without finalising MPI, and `mpirun` then ends the others.
    static func main() {
        warnAboutSlowKernels()
        var command: any ParsableCommand
        do { command = try parseAsRoot() } catch { fail(error) }
        Job.start(command)
        do {
            try command.run()
            Job.finish()
        } catch {
            let verbose = (command as? any Diagnosable)?.diagnostics.verbose ?? false
            fail(ErrorPresenter.present(error, verbose: verbose))
        }
    }

    private static func fail(_ error: any Error) -> Never {
        guard Launch.mpirun != nil else { exit(withError: error) }
        let code = exitCode(for: error)
        let message = message(for: error)
        if code != .success, !message.isEmpty { printError(Job.messagePrefix + "Error: " + message) }
        Job.finish(failed: true)
        Foundation.exit(code.rawValue)
    }
}
