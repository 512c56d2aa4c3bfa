import ArgumentParser

@main
struct Pissa: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pissa",
        abstract: "PiSSA fine-tuning toolkit: principal-singular-value adapters for Llama-family models, on CPU.",
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
        ]
    )

    /// ArgumentParser's `main`, with every error a command throws shown as one plain line
    /// (`ErrorPresenter`; `--verbose` adds the details).
    static func main() {
        var command: any ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do {
            try command.run()
        } catch {
            let verbose = (command as? any Diagnosable)?.diagnostics.verbose ?? false
            exit(withError: ErrorPresenter.present(error, verbose: verbose))
        }
    }
}
