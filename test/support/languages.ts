// One program per language profile for the integration suites (languages,
// Piston): each says hello to a line of stdin, fails to compile or parse, exits
// 3 at run time, or loops forever.
export interface LanguageCase {
  profile: string;
  compiled: boolean;
  /** Reads one line of stdin, prints "hello <line>". */
  hello: string;
  /** Does not compile (compiled languages) or does not parse. */
  broken: string;
  /** Exits non-zero at run time. */
  fails: string;
  /** Loops forever. */
  loops: string;
}

export const LANGUAGE_CASES: LanguageCase[] = [
  {
    profile: "c",
    compiled: true,
    hello:
      '#include <stdio.h>\nint main(void){char b[64];if(!fgets(b,64,stdin))return 2;printf("hello %s",b);return 0;}\n',
    broken: "int main(void){ return x; }\n",
    fails: "#include <stdlib.h>\nint main(void){ exit(3); }\n",
    loops: "int main(void){ for(;;){} }\n",
  },
  {
    profile: "cpp",
    compiled: true,
    hello:
      '#include <iostream>\n#include <string>\nint main(){std::string s;std::getline(std::cin,s);std::cout<<"hello "<<s<<"\\n";}\n',
    broken: "int main(){ undefined_thing(); }\n",
    fails: "int main(){ return 3; }\n",
    loops: "int main(){ for(;;){} }\n",
  },
  {
    profile: "java",
    compiled: true,
    hello:
      'import java.util.Scanner;\npublic class Main { public static void main(String[] a) { System.out.println("hello " + new Scanner(System.in).nextLine()); } }\n',
    broken: "public class Main { void f() { int x = ; } }\n",
    fails: "public class Main { public static void main(String[] a) { System.exit(3); } }\n",
    loops: "public class Main { public static void main(String[] a) { while (true) {} } }\n",
  },
  {
    profile: "go",
    compiled: true,
    hello:
      'package main\nimport ("bufio";"fmt";"os")\nfunc main(){ s,_:=bufio.NewReader(os.Stdin).ReadString(10); fmt.Print("hello "+s) }\n',
    broken: "package main\nfunc main(){ x := 1 }\n",
    fails: 'package main\nimport "os"\nfunc main(){ os.Exit(3) }\n',
    loops: "package main\nfunc main(){ for {} }\n",
  },
  {
    profile: "rust",
    compiled: true,
    hello:
      'use std::io::BufRead;\nfn main(){ let l = std::io::stdin().lock().lines().next().unwrap().unwrap(); println!("hello {}", l); }\n',
    broken: 'fn main(){ let x: i32 = "no"; }\n',
    fails: "fn main(){ std::process::exit(3); }\n",
    loops: "fn main(){ loop {} }\n",
  },
  {
    profile: "csharp",
    compiled: true,
    hello:
      'using System;\nclass Program { static void Main() { Console.WriteLine("hello " + Console.ReadLine()); } }\n',
    broken: "class Program { static void Main() { int x = ; } }\n",
    fails: "class Program { static int Main() { return 3; } }\n",
    loops: "class Program { static void Main() { while (true) {} } }\n",
  },
  {
    profile: "ruby",
    compiled: false,
    hello: 'puts "hello #{STDIN.gets}"\n',
    broken: "def (\n",
    fails: "exit 3\n",
    loops: "loop {}\n",
  },
  {
    profile: "php",
    compiled: false,
    hello: '<?php echo "hello " . fgets(STDIN);\n',
    broken: "<?php echo (;\n",
    fails: "<?php exit(3);\n",
    loops: "<?php while (true) {}\n",
  },
  {
    profile: "lua",
    compiled: false,
    hello: 'io.write("hello " .. io.read("l") .. "\\n")\n',
    broken: "local = 1\n",
    fails: "os.exit(3)\n",
    loops: "while true do end\n",
  },
  {
    profile: "perl",
    compiled: false,
    hello: 'my $l = <STDIN>; print "hello $l";\n',
    broken: "my $x = ;\n",
    fails: "exit 3;\n",
    loops: "while (1) {}\n",
  },
];
