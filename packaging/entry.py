"""Entry point of the frozen program: the same `annotator` command as the installed one."""

from annotator.cli.main import main

if __name__ == "__main__":
    main()
