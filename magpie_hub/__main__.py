from magpie_hub.cli.main import main

main()
