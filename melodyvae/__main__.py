from melodyvae.cli import main

main()
