from kgrank.cli import main

main()
