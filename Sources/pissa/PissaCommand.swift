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
            DataCommand.self,
            CompareCommand.self,
            ReportCommand.self,
            BenchCommand.self,
            DoctorCommand.self,
        ]
    )
}
