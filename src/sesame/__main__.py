from sesame.cli.main import main

main()
