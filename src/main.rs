fn main() -> std::process::ExitCode {
    inboxgrove::cli::main()
}
